#!/usr/bin/env bash
# Batch: `herald build` vs Hugo (Debian's hugo) on the same Markdown articles and the same
# kinds of output: for the home page, every section, category and tag, RSS, Atom and JSON
# Feed (50 entries) and HTML list pages paginated at 50; one HTML page per article; a
# sitemap. (herald writes more besides: RFC 5005 archives, OPML, a news sitemap, the term
# lists, robots.txt.) Also prints the floor: the time to create as many files of the same
# sizes in the same file system, in one process.
#
#   bench/build-vs-hugo.sh                # 10 000 articles
#   COUNT=100000 bench/build-vs-hugo.sh
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
disableKinds = ["404"]
paginate = 50
[mediaTypes."application/atom+xml"]
suffixes = ["atom"]
[mediaTypes."application/feed+json"]
suffixes = ["json"]
[outputFormats.Atom]
mediaType = "application/atom+xml"
baseName = "feed"
isPlainText = true
[outputFormats.JSONFeed]
mediaType = "application/feed+json"
baseName = "feed"
isPlainText = true
[outputs]
home = ["HTML", "RSS", "Atom", "JSONFeed"]
section = ["HTML", "RSS", "Atom", "JSONFeed"]
taxonomy = ["HTML"]
term = ["HTML", "RSS", "Atom", "JSONFeed"]
page = ["HTML"]
[taxonomies]
category = "categories"
tag = "tags"
[services.rss]
limit = 50
TOML
mkdir -p "$work/hugo/layouts/_default"
L="$work/hugo/layouts/_default"
cat >"$L/single.html" <<'T'
<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{ .Title }}</title></head><body><main><article><h1>{{ .Title }}</h1><p>{{ .Date.Format "2006-01-02" }}</p>{{ .Content }}<p>{{ range .Params.categories }}<a href="{{ "categories/" | absURL }}{{ . | urlize }}/">{{ . }}</a> {{ end }}</p></article></main></body></html>
T
cat >"$L/list.html" <<'T'
{{- $pages := .RegularPages }}{{ if .IsHome }}{{ $pages = .Site.RegularPages }}{{ end -}}
{{- $pager := .Paginate $pages -}}
<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{ .Title }}</title></head><body><main><h1>{{ .Title }}</h1><ol>{{ range $pager.Pages }}<li><a href="{{ .Permalink }}">{{ .Title }}</a> {{ .Date.Format "2006-01-02" }}<p>{{ .Summary }}</p></li>{{ end }}</ol>{{ with $pager.Next }}<a href="{{ .URL }}">Older entries</a>{{ end }}</main></body></html>
T
cat >"$L/list.atom.atom" <<'T'
{{- $pages := .RegularPages }}{{ if .IsHome }}{{ $pages = .Site.RegularPages }}{{ end -}}
<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>{{ .Title }}</title><id>{{ .Permalink }}</id><updated>{{ now.Format "2006-01-02T15:04:05Z07:00" }}</updated>{{ range first 50 $pages }}<entry><title>{{ .Title | htmlEscape }}</title><link href="{{ .Permalink }}"/><id>{{ .Permalink }}</id><updated>{{ .Lastmod.Format "2006-01-02T15:04:05Z07:00" }}</updated><summary>{{ .Summary | plainify | htmlEscape }}</summary><content type="html">{{ .Content | htmlEscape }}</content></entry>{{ end }}</feed>
T
cat >"$L/list.jsonfeed.json" <<'T'
{{- $pages := .RegularPages }}{{ if .IsHome }}{{ $pages = .Site.RegularPages }}{{ end -}}
{"version":"https://jsonfeed.org/version/1.1","title":{{ .Title | jsonify }},"items":[{{ range $i, $p := first 50 $pages }}{{ if $i }},{{ end }}{"id":{{ .Permalink | jsonify }},"url":{{ .Permalink | jsonify }},"title":{{ .Title | jsonify }},"content_html":{{ .Content | jsonify }},"date_published":{{ .Date.Format "2006-01-02T15:04:05Z07:00" | jsonify }}}{{ end }}]}
T

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
# The floor: herald's files (paths and sizes) created anew, in one process, twice.
floor() {
  python3 - "$work/out1" "$work/$1" <<'PY'
import os, sys, time
src, dst = sys.argv[1], sys.argv[2]
files = []
for root, _, names in os.walk(src):
    for n in names:
        p = os.path.join(root, n)
        files.append((os.path.relpath(p, src), os.path.getsize(p)))
buf = b"x" * max((s for _, s in files), default=0)
t = time.time()
made = set()
for rel, size in files:
    d = os.path.dirname(os.path.join(dst, rel))
    if d not in made:
        os.makedirs(d, exist_ok=True)
        made.add(d)
    with open(os.path.join(dst, rel), "wb") as f:
        f.write(buf[:size])
print(f"{time.time() - t:.2f}")
PY
}
f1=$(floor floor1)
f2=$(floor floor2)
f=$(awk -v a="$f1" -v b="$f2" 'BEGIN { print (a < b ? a : b) }')
count() { find "$1" -type f | wc -l; }
printf "%-40s | %8s | %8s\n" "$COUNT Markdown articles" seconds files
printf -- "-----------------------------------------|----------|---------\n"
printf "%-40s | %8s | %8s\n" "herald build (fresh state)" "$h" "$(count "$work/out1")"
printf "%-40s | %8s | %8s\n" "hugo $(hugo version | awk '{print $2}') (same kinds of output)" "$g" "$(count "$work/hugo-out1")"
printf "%-40s | %8s | %8s\n" "floor: herald's files created anew" "$f" "$(count "$work/out1")"
echo "herald is $(awk -v a="$g" -v b="$h" 'BEGIN { printf "%.1f", a / b }')x faster than Hugo (target >= 3x) and $(awk -v a="$h" -v b="$f" 'BEGIN { printf "%.2f", a / b }')x the file-creation floor (target <= 1.3x); feeds: herald $(find "$work/out1" -name 'feed.*' | wc -l), hugo $(find "$work/hugo-out1" -name 'feed.*' -o -name 'index.xml' | wc -l); pages: herald $(find "$work/out1" -name '*.html' | wc -l), hugo $(find "$work/hugo-out1" -name '*.html' | wc -l)"
