#!/usr/bin/env bash
# Regenerates the sentiment experiment (docs/sentiment.md): w2s eval JSONL files in docs/sentiment/ and, from them, the
# plots (docs/sentiment/reward-vs-compute.png, reward-vs-tokens.png) and table (docs/sentiment/table.md).
#
#   bash tools/sentiment-eval.sh            # everything (resumes: runs already in the files are skipped)
#   PROMPTS=20 OUT=/tmp/s bash tools/sentiment-eval.sh   # a smaller run elsewhere
#   BLOCK=20 bash tools/sentiment-eval.sh   # every method on prompts 1-20, then 21-40, ...: stopped early, the
#                                           # files still cover the same prompts (the block in progress aside)
#   METHODS="sample cbs-4-4-5" bash tools/sentiment-eval.sh   # only these of the evals below
#
# The gold reward is VADER's compound score (--reward vader); the AFINN-165 run is kept in docs/sentiment/afinn and
# docs/sentiment/table-afinn.md. Each line also records distinct-1/2 and rep-3 of the response (w2s eval).
# Settings are the paper's sentiment settings and were fixed before any result was seen: temperature 0.7, top-k 50,
# 50 new tokens; Base = sampling, Best-of-N 16, EFT beta 1, CBS W,K,L = 4,4,5 over the first $PROMPTS held-out
# prompts x seeds 1,2,3; the compute sweep (W·K = 1,2,4,8 for CBS, N = 2,4,8 for Best-of-N) uses seed 1 only.
# JOBS evals run at once, each with one CPU thread (DOTNET_PROCESSOR_COUNT=1), so wall times are per-thread times
# under that load.
set -euo pipefail
cd "$(dirname "$0")/.."
PROMPTS=${PROMPTS:-200}
OUT=${OUT:-docs/sentiment}
JOBS=${JOBS:-3}
BLOCK=${BLOCK:-$PROMPTS}
METHODS=${METHODS:-}
M=samples/sentiment
mkdir -p "$OUT"
dotnet build src/WeakToStrong.Cli -c Release -v q -nologo >/dev/null
dotnet build tools/SentimentPlot -c Release -v q -nologo >/dev/null
W="dotnet src/WeakToStrong.Cli/bin/Release/net10.0/w2s.dll"
PAIR="--large $M/large --tuned $M/tuned --untuned $M/untuned"
XPAIR="--large $M/large --tuned $M/tuned-xtok --untuned $M/untuned-xtok"

# One eval per line: output file, then w2s eval arguments. Each method appends to its own file, so the parallel
# jobs never write to one file; the report reads them all. The main comparison comes first.
jobs_file=$(mktemp)
cat > "$jobs_file" <<JOBS
sample      $PAIR --method sample --seeds 1,2,3
cbs-4-4-5   $PAIR --method cbs --beam-width 4 --successors 4 --chunk-length 5 --seeds 1,2,3
bon-16      $PAIR --method bon --n 16 --seeds 1,2,3
eft-1       $PAIR --method eft --beta 1 --seeds 1,2,3
xtok-cbs-4-4-5 $XPAIR --method cbs --beam-width 4 --successors 4 --chunk-length 5 --seeds 1,2,3
cbs-2-2-1   $PAIR --method cbs --beam-width 2 --successors 2 --chunk-length 1 --seeds 1,2,3
xtok-cbs-2-2-1 $XPAIR --method cbs --beam-width 2 --successors 2 --chunk-length 1 --seeds 1,2,3
cbs-2-4-5   $PAIR --method cbs --beam-width 2 --successors 4 --chunk-length 5 --seeds 1
bon-8       $PAIR --method bon --n 8 --seeds 1
cbs-2-2-5   $PAIR --method cbs --beam-width 2 --successors 2 --chunk-length 5 --seeds 1
bon-4       $PAIR --method bon --n 4 --seeds 1
cbs-1-2-5   $PAIR --method cbs --beam-width 1 --successors 2 --chunk-length 5 --seeds 1
bon-2       $PAIR --method bon --n 2 --seeds 1
cbs-1-1-5   $PAIR --method cbs --beam-width 1 --successors 1 --chunk-length 5 --seeds 1
cbs-1-2-1   $PAIR --method cbs --beam-width 1 --successors 2 --chunk-length 1 --seeds 1
cbs-2-4-1   $PAIR --method cbs --beam-width 2 --successors 4 --chunk-length 1 --seeds 1 --kv-memory 256MiB
cbs-4-4-1   $PAIR --method cbs --beam-width 4 --successors 4 --chunk-length 1 --seeds 1 --kv-memory 256MiB
JOBS
if [ -n "$METHODS" ]; then
  grep -E "^($(echo "$METHODS" | tr ' ' '|')) " "$jobs_file" > "$jobs_file.only" || true
  mv "$jobs_file.only" "$jobs_file"
fi
export W OUT
for ((upto = BLOCK; upto < PROMPTS + BLOCK; upto += BLOCK)); do
  head -n "$((upto < PROMPTS ? upto : PROMPTS))" "$M/prompts.jsonl" > "$OUT/prompts.jsonl"
  # shellcheck disable=SC2016
  xargs -P "$JOBS" -L 1 bash -c 'name=$0; DOTNET_PROCESSOR_COUNT=1 $W eval --prompts "$OUT/prompts.jsonl" --out "$OUT/$name.jsonl" --reward vader "$@" >> "$OUT/$name.log" 2>&1 && echo "done $name" || { echo "FAILED $name (see $OUT/$name.log)"; exit 255; }' < "$jobs_file"
done
rm -f "$jobs_file"
dotnet tools/SentimentPlot/bin/Release/net10.0/SentimentPlot.dll --png "$OUT/reward-vs-compute.png" --tokens-png "$OUT/reward-vs-tokens.png" --table "$OUT/table.md" $(ls "$OUT"/*.jsonl | grep -v /prompts.jsonl)
