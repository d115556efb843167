#!/usr/bin/env bash
# Throughput of the default scenario on this machine, and what the machine itself allows.
#
# Each round runs, back to back:
#   1. `aftershock run` on 1 thread: plan-trials per CPU-second;
#   2. the same run on 2 threads: the speed-up from 1 to 2 threads (wall time of 1 / of 2);
#   3. two independent 1-thread runs at the same time: the machine's own ceiling for that
#      speed-up (twice the 1-thread wall time / the pair's wall time). Two processes that share
#      nothing scale as well as anything can here; when they stay below 2x, the cores slow each
#      other down (shared physical cores, frequency, memory), not the program. `of_ceil` is the
#      program's speed-up as a share of the same round's ceiling.
# Rounds alternate the three so that the machine's speed, which may drift, hits them alike. The
# load average is read before each round; run it on an otherwise idle machine.
#
# usage: bash benches/threads.sh [ROUNDS] [TRIALS]     (defaults: 5 rounds of 3000 trials)
# Output: one line per round, then the medians. Runs write into a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
trials=${2:-3000}
# The default scenario compares 3 plans on the same failure draws.
plans=3
cargo build --release --quiet
bin=target/release/aftershock
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run OUT_DIR THREADS -> "wall_s cpu_s"
run() {
    /usr/bin/time -f "%e %U %S" -o "$tmp/time.$1" \
        "$bin" run --trials "$trials" --quiet --threads "$2" --out "$tmp/$1" >/dev/null 2>"$tmp/log.$1"
    awk '{ printf "%s %.2f\n", $1, $2 + $3 }' "$tmp/time.$1"
}

now() { date +%s.%N; }

printf "%-5s %-6s %-8s %-9s %-10s %-8s %-9s %-10s %-8s %-8s\n" round load 1t_wall 1t_cpu pt/cpu_s 2t_wall speed-up pair_wall ceiling of_ceil
results=()
for r in $(seq 1 "$rounds"); do
    load=$(cut -d' ' -f1 /proc/loadavg)
    read -r w1 c1 < <(run one 1)
    read -r w2 _ < <(run two 2)
    start=$(now)
    run pair_a 1 >/dev/null &
    run pair_b 1 >/dev/null &
    wait
    wp=$(echo "$(now) - $start" | bc -l)
    line=$(awk -v r="$r" -v load="$load" -v w1="$w1" -v c1="$c1" -v w2="$w2" -v wp="$wp" \
        -v pt="$((trials * plans))" 'BEGIN {
            printf "%-5s %-6s %-8.2f %-9.2f %-10.0f %-8.2f %-9.2f %-10.2f %-8.2f %-8.2f\n",
                r, load, w1, c1, pt / c1, w2, w1 / w2, wp, 2 * w1 / wp, (w1 / w2) / (2 * w1 / wp) }')
    echo "$line"
    results+=("$line")
done

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { printf "%s\n" "${results[@]}" | awk -v c="$1" '{ print $c }' | median; }
echo "medians: $(col 5) plan-trials per CPU-second on 1 thread; speed-up 1 to 2 threads $(col 7)x; the machine's ceiling (two independent runs) $(col 9)x; the speed-up as a share of the same round's ceiling $(col 10)"
echo "best: $(printf "%s\n" "${results[@]}" | awk '{ print $5 }' | sort -n | tail -1) plan-trials per CPU-second; speed-up $(printf "%s\n" "${results[@]}" | awk '{ print $7 }' | sort -n | tail -1)x; ceiling $(printf "%s\n" "${results[@]}" | awk '{ print $9 }' | sort -n | tail -1)x"
