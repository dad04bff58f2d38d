#!/usr/bin/env bash
# Batch: `herald build` vs Hugo (Debian's hugo) generating RSS for the same articles as
# Markdown — the home feed, one per category and one per tag — same machine, same run.
#
#   bench/build-vs-hugo.sh          # 10 000 articles
source "$(dirname "$0")/common.sh"
COUNT=${COUNT:-10000}
need hugo hugo
build_release
CONTENT=${CORPUS_DIR:-$(corpus_dir "md-$COUNT")}
corpus "$CONTENT" "$COUNT" md
# Outputs on tmpfs when there is one, so file system metadata costs do not drown both.
work=$(mktemp -d -p "$( [ -d /dev/shm ] && echo /dev/shm || echo /tmp )")
trap 'rm -rf "$work"' EXIT

# Hugo site: the same files as content/posts, RSS only for home, sections and taxonomies.
mkdir -p "$work/hugo/content"
ln -s "$CONTENT" "$work/hugo/content/posts"
cat >"$work/hugo/config.toml" <<TOML
baseURL = "http://127.0.0.1/"
title = "bench"
disableKinds = ["sitemap", "robotsTXT", "404"]
[outputs]
home = ["RSS"]
section = ["RSS"]
taxonomy = ["RSS"]
term = ["RSS"]
page = ["HTML"]
[taxonomies]
category = "categories"
tag = "tags"
[services.rss]
limit = 50
TOML
mkdir -p "$work/hugo/layouts/_default"
# A minimal page template, so Hugo renders the article pages the feeds link to (as herald does).
echo '<!doctype html><title>{{ .Title }}</title>{{ .Content }}' >"$work/hugo/layouts/_default/single.html"

bench_config "$work/herald.toml" 18085
time_cmd() { local t0; t0=$(now); "$@" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }; awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
# Warm the page cache, then time each twice and keep the better run.
cat "$CONTENT"/*/* >/dev/null
h1=$(time_cmd "$HERALD" --config "$work/herald.toml" --content "$CONTENT" --state-dir "$work/state1" build --out "$work/out1")
h2=$(time_cmd "$HERALD" --config "$work/herald.toml" --content "$CONTENT" --state-dir "$work/state2" build --out "$work/out2")
g1=$(time_cmd hugo --source "$work/hugo" --destination "$work/hugo-out1" --quiet)
g2=$(time_cmd hugo --source "$work/hugo" --destination "$work/hugo-out2" --quiet)
h=$(awk -v a="$h1" -v b="$h2" 'BEGIN { print (a < b ? a : b) }')
g=$(awk -v a="$g1" -v b="$g2" 'BEGIN { print (a < b ? a : b) }')
printf "%-34s | %8s\n" "$COUNT Markdown articles" seconds
printf -- "-----------------------------------|---------\n"
printf "%-34s | %8s\n" "herald build (fresh state)" "$h"
printf "%-34s | %8s\n" "hugo ($(hugo version | awk '{print $2}'))" "$g"
echo "herald is $(awk -v a="$g" -v b="$h" 'BEGIN { printf "%.1f", a / b }')x faster (target >= 10x); herald feeds: $(find "$work/out1" -name 'feed.rss' | wc -l) RSS, hugo: $(find "$work/hugo-out1" -name 'index.xml' | wc -l) RSS"
