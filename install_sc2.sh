#!/usr/bin/env bash
# Install what `--env-config=sc2` needs (Linux):
#   1. the StarCraft II Linux package 4.10 (Blizzard's headless build) into $SC2PATH,
#   2. the SMAC maps into $SC2PATH/Maps/SMAC_Maps,
#   3. oxwhirl SMAC (not on PyPI: PyPI's "smac" is an unrelated AutoML package) from git.
#
# Usage: bash install_sc2.sh            (SC2PATH defaults to ~/StarCraftII)
#        SC2PATH=/opt/StarCraftII PYTHON=.venv/bin/python bash install_sc2.sh
# Then export SC2PATH (if not the default) before running src/main.py.
#
# By installing you accept the StarCraft II AI and Machine Learning License
# (https://blzdistsc2-a.akamaihd.net/AI_AND_MACHINE_LEARNING_LICENSE.html); the zip password
# below is Blizzard's published acceptance of it.
set -euo pipefail

SC2PATH="${SC2PATH:-$HOME/StarCraftII}"
PYTHON="${PYTHON:-python}"
SC2_VERSION="${SC2_VERSION:-4.10}"
SC2_URL="https://blzdistsc2-a.akamaihd.net/Linux/SC2.${SC2_VERSION}.zip"
MAPS_URL="https://github.com/oxwhirl/smac/releases/download/v0.1-beta1/SMAC_Maps.zip"
# SMAC commit: the newest revision of smac/env/starcraft2/starcraft2.py we could find, after
# pull request #117 (Aug 2023) replaced the removed numpy aliases (np.bool -> bool), so it
# imports under numpy 2 and Python 3.11. Override with SMAC_COMMIT=<sha> to try another one.
SMAC_COMMIT="${SMAC_COMMIT:-8c4fff48ace10e0f73753b6b90a0b97fd97818cb}"

for tool in curl unzip; do
    command -v "$tool" >/dev/null 2>&1 || { echo "install_sc2.sh: '$tool' is required (apt-get install -y $tool)" >&2; exit 1; }
done

mkdir -p "$SC2PATH"
# work next to the target, so moving the unpacked game is a rename, not a 4 GB copy
tmp="$(mktemp -d "$(dirname "$SC2PATH")/.install_sc2.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

if [ -d "$SC2PATH/Versions" ]; then
    echo "StarCraft II already present in $SC2PATH"
else
    echo "Downloading StarCraft II ${SC2_VERSION} (about 4 GB) ..."
    curl -fL --retry 3 -o "$tmp/sc2.zip" "$SC2_URL"
    unzip -q -P iagreetotheeula "$tmp/sc2.zip" -d "$tmp/unz"
    rm -f "$tmp/sc2.zip"
    # the archive holds one top-level folder "StarCraftII"
    for entry in "$tmp/unz/StarCraftII"/*; do
        mv "$entry" "$SC2PATH/"
    done
fi

mkdir -p "$SC2PATH/Maps"
if [ -f "$SC2PATH/Maps/SMAC_Maps/3m.SC2Map" ]; then
    echo "SMAC maps already present in $SC2PATH/Maps/SMAC_Maps"
else
    echo "Downloading the SMAC maps ..."
    curl -fL --retry 3 -o "$tmp/maps.zip" "$MAPS_URL"
    unzip -q -o "$tmp/maps.zip" -d "$SC2PATH/Maps"
fi

echo "Installing oxwhirl SMAC @ ${SMAC_COMMIT} with ${PYTHON} ..."
"$PYTHON" -m pip install "git+https://github.com/oxwhirl/smac.git@${SMAC_COMMIT}"
"$PYTHON" -c "import smac.env; print('smac.env OK:', smac.env.__file__)"

echo "Done. StarCraft II is in $SC2PATH; run with: SC2PATH=$SC2PATH python src/main.py --config=qmix --env-config=sc2 with env_args.map_name=3m"
