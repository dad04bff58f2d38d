//! Generates a corpus of articles in the scraped news-page format (like the seed), for
//! benchmarks: varied titles, dates over several years, ~12 categories, keywords, 3–12
//! paragraphs, 1–6 KB each. Deterministic: the same `--seed` gives the same files.
//!
//! cargo run --release --example corpus -- --count 100000 --seed 1 --out /tmp/corpus
//!
//! `--format md` writes the same articles as Markdown with YAML front matter instead
//! (for comparing with generators that read Markdown).
//!
//! Shapes: `--per-folder N` files a folder (default 100, like a portal's dated archive),
//! `--flat` all in one folder (a scraped mirror); `--terms N` draws keywords from N
//! distinct terms in all (the 12 categories included) instead of the 30 built in, so a
//! site has about N category and tag feeds.

use std::fmt::Write as _;
use std::path::PathBuf;

/// splitmix64: small, fast, deterministic; good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const CATEGORIES: [&str; 12] = [
    "Industry trends",
    "Economy",
    "Technology",
    "World",
    "Energy",
    "Trade",
    "Science",
    "Culture",
    "Education",
    "Health",
    "Environment",
    "Policy",
];
const SUBJECTS: [&str; 24] = [
    "China",
    "The US",
    "Researchers",
    "Officials",
    "Investors",
    "Exporters",
    "Scientists",
    "The ministry",
    "Local governments",
    "Analysts",
    "Manufacturers",
    "Universities",
    "Regulators",
    "The central bank",
    "Farmers",
    "Startups",
    "Negotiators",
    "Engineers",
    "Hospitals",
    "Carmakers",
    "Shipping firms",
    "Tech companies",
    "Economists",
    "Diplomats",
];
const VERBS: [&str; 16] = [
    "expect", "announce", "discuss", "report", "plan", "welcome", "review", "propose", "launch",
    "debate", "support", "question", "extend", "expand", "study", "confirm",
];
const OBJECTS: [&str; 24] = [
    "new cyber rules",
    "a trade agreement",
    "record solar capacity",
    "higher tariffs",
    "rural broadband",
    "electric vehicle subsidies",
    "a research partnership",
    "port upgrades",
    "lower interest rates",
    "a climate pledge",
    "semiconductor investment",
    "cross-border payments",
    "food safety standards",
    "a space mission",
    "vocational training",
    "hospital reform",
    "water conservation",
    "a rail link",
    "data protection",
    "export credits",
    "grain reserves",
    "an innovation fund",
    "carbon markets",
    "tourism recovery",
];
const WORDS: [&str; 40] = [
    "the",
    "growth",
    "market",
    "policy",
    "said",
    "year",
    "percent",
    "development",
    "cooperation",
    "according",
    "report",
    "government",
    "new",
    "project",
    "increase",
    "international",
    "industry",
    "investment",
    "global",
    "local",
    "plan",
    "support",
    "countries",
    "quarter",
    "figures",
    "data",
    "experts",
    "companies",
    "region",
    "national",
    "sector",
    "build",
    "first",
    "second",
    "major",
    "economic",
    "technology",
    "future",
    "long-term",
    "sustainable",
];
const KEYWORDS: [&str; 30] = [
    "trade",
    "tariffs",
    "cyber",
    "security",
    "solar",
    "energy",
    "economy",
    "investment",
    "AI",
    "5G",
    "climate",
    "exports",
    "imports",
    "finance",
    "banking",
    "health",
    "education",
    "rail",
    "ports",
    "agriculture",
    "innovation",
    "startups",
    "policy",
    "diplomacy",
    "research",
    "space",
    "water",
    "tourism",
    "manufacturing",
    "data",
];

/// The parts of one generated article.
struct Parts {
    title: String,
    category: &'static str,
    date: String,
    paragraphs: Vec<String>,
    keywords: Vec<String>,
}

fn scraped(p: &Parts) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "Your present location:HomeNews{} >\u{a0}{}\n\n{}\n\nNumber of visits: Date:{}\n\n",
        p.category, p.title, p.title, p.date
    );
    for para in &p.paragraphs {
        let _ = write!(out, "  {para}\n\n");
    }
    let _ = write!(
        out,
        "TypeInfo: {}\n\nKeywords for the information:{}",
        p.category,
        p.keywords.join(",")
    );
    out
}

fn markdown(p: &Parts) -> String {
    let date = p.date.replace('/', "-");
    let mut out = format!(
        "---\ntitle: \"{}\"\ndate: {}\ncategories: [\"{}\"]\ntags: [{}]\n---\n\n",
        p.title,
        if date.len() == 10 {
            date
        } else {
            date.replace(' ', "T") + ":00"
        },
        p.category,
        p.keywords
            .iter()
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for para in &p.paragraphs {
        let _ = write!(out, "{para}\n\n");
    }
    out
}

fn article(rng: &mut Rng, n: usize, vocabulary: &[String]) -> Parts {
    let title = format!(
        "{} {} {} ({n})",
        rng.pick(&SUBJECTS),
        rng.pick(&VERBS),
        rng.pick(&OBJECTS)
    );
    let category = rng.pick(&CATEGORIES);
    // Dates spread over 2012–2025.
    let year = 2012 + rng.below(14);
    let (month, day) = (1 + rng.below(12), 1 + rng.below(28));
    let date = match rng.below(4) {
        0 => format!("{year}/{month:02}/{day:02}"),
        1 => format!(
            "{year}-{month:02}-{day:02} {:02}:{:02}",
            rng.below(24),
            rng.below(60)
        ),
        _ => format!("{year}-{month:02}-{day:02}"),
    };
    let target = 1024 + rng.below(5 * 1024);
    let count = 3 + rng.below(10);
    let per_paragraph = target / count;
    let mut paragraphs = Vec::with_capacity(count);
    for _ in 0..count {
        let mut out = String::with_capacity(per_paragraph + 16);
        let mut first = true;
        while out.len() < per_paragraph {
            let w = rng.pick(&WORDS);
            if !out.is_empty() {
                out.push(' ');
            }
            if first {
                let mut c = w.chars();
                if let Some(f) = c.next() {
                    out.extend(f.to_uppercase());
                    out.push_str(c.as_str());
                }
                first = false;
            } else {
                out.push_str(w);
            }
            if rng.below(12) == 0 {
                out.push('.');
                first = true;
            }
        }
        out.push('.');
        paragraphs.push(out);
    }
    let nk = rng.below(4);
    let keywords = (0..nk)
        .map(|_| {
            if vocabulary.is_empty() {
                rng.pick(&KEYWORDS).to_string()
            } else {
                vocabulary[rng.below(vocabulary.len())].clone()
            }
        })
        .collect();
    Parts {
        title,
        category,
        date,
        paragraphs,
        keywords,
    }
}

fn main() {
    let mut count = 1000usize;
    let mut seed = 1u64;
    let mut out = PathBuf::from("corpus");
    let mut format = String::from("txt");
    let mut per_folder = 100usize;
    let mut terms = 0usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--flat" {
            per_folder = 0;
            continue;
        }
        let v = args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--count" => count = v.parse().expect("--count takes a number"),
            "--seed" => seed = v.parse().expect("--seed takes a number"),
            "--out" => out = PathBuf::from(v),
            "--format" => format = v,
            "--per-folder" => per_folder = v.parse().expect("--per-folder takes a number"),
            "--terms" => terms = v.parse().expect("--terms takes a number"),
            _ => panic!(
                "unknown argument {a} (use --count N --seed S --format txt|md --out DIR [--flat | --per-folder N] [--terms N])"
            ),
        }
    }
    // Keywords beside the 12 categories: "<word> <word>" pairs, numbered when they repeat.
    let vocabulary: Vec<String> = (0..terms.saturating_sub(CATEGORIES.len()))
        .map(|i| {
            let (a, b) = (
                WORDS[i % WORDS.len()],
                WORDS[(i / WORDS.len() + 7 * i) % WORDS.len()],
            );
            match i / (WORDS.len() * WORDS.len()) {
                0 => format!("{a} {b}"),
                k => format!("{a} {b} {k}"),
            }
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut rng = Rng(seed);
    for n in 0..count {
        let dir = match n.checked_div(per_folder) {
            None => out.clone(),
            Some(folder) => out.join(format!("{folder:04}")),
        };
        if n == 0 || (per_folder > 0 && n % per_folder == 0) {
            std::fs::create_dir_all(&dir).expect("create corpus dir");
        }
        let parts = article(&mut rng, n, &vocabulary);
        let (text, ext) = match format.as_str() {
            "md" => (markdown(&parts), "md"),
            _ => (scraped(&parts), "txt"),
        };
        std::fs::write(dir.join(format!("{n:06}.{ext}")), text).expect("write article");
    }
    eprintln!("wrote {count} articles to {}", out.display());
}
