#!/usr/bin/env bash
# Builds the larger corpora that the shipped models and the quality benchmarks train on, from
# registry packages only (../shared/DATA.md): music21's ABC folk-tune books and Bach chorales,
# abc2midi, FluidSynth with the FluidR3 General MIDI soundfont, sox.
#
#   bash scripts/build_corpora.sh [OUT]      (default OUT: corpora/, which git ignores)
#
# OUT/folk/oneills/, OUT/folk/airds/: one MIDI file per tune (O'Neill's 1850, Aird's Airs).
# OUT/bach-midi/: the Bach chorales (four parts) as MIDI; OUT/bach-piano/: each rendered as
# piano, 16 kHz mono 16-bit FLAC, its leading and trailing silence trimmed.
# Needs: apt-get install -y abcmidi fluidsynth fluid-soundfont-gm sox (as root), and music21,
# which is installed into a separate environment (OUT/.music21-venv) so that the project's
# environment stays as pinned.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-corpora}"
SOUNDFONT=/usr/share/sounds/sf2/FluidR3_GM.sf2
for tool in abc2midi fluidsynth sox; do
    command -v "$tool" >/dev/null || {
        echo "build_corpora: $tool is missing: apt-get install -y abcmidi fluidsynth fluid-soundfont-gm sox" >&2
        exit 1
    }
done
[ -f "$SOUNDFONT" ] || { echo "build_corpora: $SOUNDFONT is missing: apt-get install -y fluid-soundfont-gm" >&2; exit 1; }

mkdir -p "$OUT"
VENV="$OUT/.music21-venv"
[ -x "$VENV/bin/python" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet music21==10.5.1; }
CORPUS=$("$VENV/bin/python" -c "import music21, os; print(os.path.dirname(music21.__file__))")/corpus

# abc2midi writes beside its input: copy the books first.
for book in oneills1850:oneills airdsAirs:airds; do
    src=${book%%:*} dst="$OUT/folk/${book##*:}"
    if [ ! -d "$dst" ]; then
        mkdir -p "$dst.tmp" && cp "$CORPUS/$src"/*.abc "$dst.tmp/"
        (cd "$dst.tmp" && for f in *.abc; do abc2midi "$f" -NGUI -silent -quiet >/dev/null 2>&1 || true; done && rm -f ./*.abc)
        mv "$dst.tmp" "$dst"
    fi
    echo "$dst: $(ls "$dst" | wc -l) MIDI files"
done

if [ ! -d "$OUT/bach-midi" ]; then
    mkdir -p "$OUT/bach-midi.tmp"
    "$VENV/bin/python" - "$OUT/bach-midi.tmp" <<'EOF'
import os, sys
import music21
out = sys.argv[1]
for path in music21.corpus.getComposer("bach"):
    name = os.path.splitext(os.path.basename(str(path)))[0]
    try:
        score = music21.corpus.parse(path)
        for instrument in score.recurse().getElementsByClass(music21.instrument.Instrument):
            instrument.midiProgram = 0  # every part on the piano
        score.write("midi", fp=os.path.join(out, name + ".mid"))
    except Exception as e:  # a few scores do not convert; say which
        print(f"skipped {name}: {e}", file=sys.stderr)
EOF
    mv "$OUT/bach-midi.tmp" "$OUT/bach-midi"
fi
echo "$OUT/bach-midi: $(ls "$OUT/bach-midi" | wc -l) MIDI files"

mkdir -p "$OUT/bach-piano"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for mid in "$OUT"/bach-midi/*.mid; do
    flac="$OUT/bach-piano/$(basename "${mid%.mid}").flac"
    [ -f "$flac" ] && continue
    fluidsynth -ni -q -g 0.6 -r 16000 -O s16 -T wav -F "$tmp/s.wav" "$SOUNDFONT" "$mid" >/dev/null 2>&1
    # Silence before the first note and after the last one's decay is trimmed (below -50 dB):
    # a model trained on long silences learns that silence stays silent, and generation that
    # falls into it does not come out.
    sox -q "$tmp/s.wav" -b 16 "$tmp/m.flac" remix - rate 16k gain -n -1 \
        silence 1 0.01 -50d reverse silence 1 0.01 -50d reverse
    mv "$tmp/m.flac" "$flac"
done
echo "$OUT/bach-piano: $(ls "$OUT/bach-piano" | wc -l) FLAC files," \
     "$(soxi -DT "$OUT"/bach-piano/*.flac | cut -d. -f1) s"
