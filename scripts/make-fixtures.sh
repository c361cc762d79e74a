#!/usr/bin/env bash
# Writes small deterministic fragmented-MP4 fixtures shaped like the live encoder's output
# (empty moov, default-base-is-moof, one fragment per frame) into OUTDIR. Files that exist are kept.
#
#   video-6s.mp4          6 s 320x180 25 fps H.264, no B-frames, a keyframe every second
#   video-bframes-6s.mp4  6 s 320x180 25 fps H.264 with B-frames (composition offsets), a keyframe every 2 s
#   audio-6s.mp4          6 s AAC-LC 48 kHz stereo
#   video-irregular-8s.mp4  8 s 320x180 25 fps H.264, no B-frames, key frames only at 0, 0.6, 3.12, 3.52, 4 and 7.2 s
#
# Usage: scripts/make-fixtures.sh OUTDIR
set -euo pipefail

outdir="${1:?usage: make-fixtures.sh OUTDIR}"
mkdir -p "$outdir"
command -v ffmpeg >/dev/null || { echo "make-fixtures: ffmpeg not found (apt-get install ffmpeg)" >&2; exit 1; }

common=(-hide_banner -loglevel error -nostdin -y)
# Output side: the live encoder's container flags, plus what makes the bytes reproducible
# (no encoder version strings, no creation time, no metadata carried over).
output=(-map_metadata -1 -fflags +bitexact -flags:v +bitexact -flags:a +bitexact
        -f mp4 -movflags empty_moov+default_base_moof+frag_every_frame)

# Each file is encoded under a private temporary name and renamed into place: an interrupted run
# leaves no half file behind, and test files running in parallel can share one OUTDIR.
partial=""
trap '[[ -n "$partial" ]] && rm -f "$partial"' EXIT
make() {
  local name="$1"; shift
  local target="$outdir/$name"
  [[ -s "$target" ]] && return 0
  partial="$target.partial.$$"
  ffmpeg "${common[@]}" "$@" "${output[@]}" "$partial"
  mv -f "$partial" "$target"
  partial=""
}

make video-6s.mp4 \
  -f lavfi -i testsrc2=size=320x180:rate=25:duration=6 \
  -c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 25 -keyint_min 25 -sc_threshold 0 -bf 0 \
  -x264-params threads=1

make video-bframes-6s.mp4 \
  -f lavfi -i testsrc2=size=320x180:rate=25:duration=6 \
  -c:v libx264 -preset fast -pix_fmt yuv420p -g 50 -keyint_min 50 -sc_threshold 0 -bf 2 \
  -x264-params threads=1

make audio-6s.mp4 \
  -f lavfi -i sine=frequency=440:sample_rate=48000:duration=6 \
  -af aformat=channel_layouts=stereo -c:a aac -b:a 96k -ar 48000 -ac 2

make video-irregular-8s.mp4 \
  -f lavfi -i testsrc2=size=320x180:rate=25:duration=8 \
  -c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 1000 -keyint_min 1000 -sc_threshold 0 -bf 0 \
  -force_key_frames 0,0.6,3.12,3.52,4,7.2 -x264-params threads=1
