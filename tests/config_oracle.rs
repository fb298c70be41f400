//! Oracle test: our INI parser against Python's `configparser.RawConfigParser()` (the parser the
//! StratusLab CLI read its files with, so the one its users wrote them for: no `%`
//! interpolation). Generates well-formed files with proptest (fixed
//! seed), writes them to a temporary directory, parses them all in ONE `python3` process and
//! requires the same sections, options, values and order. A few malformed files check that both
//! sides refuse them, and the real reference file (tests/fixtures/config) is compared too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use _stratuslab::config::{parse_file, RawConfig};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

const GENERATED_FILES: usize = 600;

/// A piece of an option value.
#[derive(Debug, Clone)]
enum Frag {
    Text(String),
    /// Text with `%` signs (`%`, `%%`, `%d`, `%(`…), kept as written.
    Percent(&'static str),
    /// `%(name)s` naming an earlier option of the section (index modulo their count), with the
    /// name upper-cased (ASCII) when the flag is set: kept as written too.
    Ref(usize, bool),
}

/// A line after an option line.
#[derive(Debug, Clone)]
enum Cont {
    /// A continuation line, indented this much deeper than the option line (minus one).
    Text(usize, Vec<Frag>),
    /// A white-space-only line.
    Blank(String),
    /// A comment line (any indentation).
    Comment(String),
}

/// A line between things.
#[derive(Debug, Clone)]
enum Noise {
    Blank(String),
    Comment(String),
}

#[derive(Debug, Clone)]
struct EntrySpec {
    key: String,
    indent: String,
    before_sep: String,
    sep: char,
    after_sep: String,
    value: Vec<Frag>,
    trailing: String,
    cont: Vec<Cont>,
}

#[derive(Debug, Clone)]
struct SectionSpec {
    name: String,
    indent: String,
    junk: String,
    noise: Vec<Noise>,
    entries: Vec<(EntrySpec, Vec<Noise>)>,
}

#[derive(Debug, Clone)]
struct FileSpec {
    preamble: Vec<Noise>,
    sections: Vec<SectionSpec>,
    newline: &'static str,
    final_newline: bool,
}

/// White space Python strips (includes U+001C..U+001F, U+00A0, U+3000).
fn ws(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            6 => Just(' '),
            2 => Just('\t'),
            1 => Just('\u{c}'),
            1 => Just('\u{1c}'),
            1 => Just('\u{a0}'),
            1 => Just('\u{3000}'),
        ],
        0..=max,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn indent() -> impl Strategy<Value = String> {
    prop_oneof![3 => Just(String::new()), 1 => ws(3)]
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 \t\"'=:#;\\[\\]()é中🚀\u{a0},./\\\\-]{0,12}"
}

fn frags() -> impl Strategy<Value = Vec<Frag>> {
    proptest::collection::vec(
        prop_oneof![
            6 => text().prop_map(Frag::Text),
            1 => prop_oneof![
                Just("%"),
                Just("%%"),
                Just("50%off"),
                Just("%d"),
                Just("%(x"),
                Just("%(nothere)s"),
            ]
            .prop_map(Frag::Percent),
            1 => (any::<usize>(), any::<bool>()).prop_map(|(i, up)| Frag::Ref(i, up)),
        ],
        0..4,
    )
}

fn comment() -> impl Strategy<Value = String> {
    (indent(), prop_oneof![Just('#'), Just(';')], text()).prop_map(|(i, c, t)| format!("{i}{c}{t}"))
}

fn noise() -> impl Strategy<Value = Vec<Noise>> {
    proptest::collection::vec(
        prop_oneof![
            ws(3).prop_map(Noise::Blank),
            comment().prop_map(Noise::Comment)
        ],
        0..3,
    )
}

fn key() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9_. éÉßΣσ-]{0,8}".prop_map(|k| k.trim_end().to_owned())
}

fn entry() -> impl Strategy<Value = EntrySpec> {
    (
        key(),
        indent(),
        ws(2),
        prop_oneof![Just('='), Just(':')],
        ws(2),
        frags(),
        ws(2),
        proptest::collection::vec(
            prop_oneof![
                4 => (0usize..3, frags()).prop_map(|(d, f)| Cont::Text(d, f)),
                1 => ws(3).prop_map(Cont::Blank),
                1 => comment().prop_map(Cont::Comment),
            ],
            0..3,
        ),
    )
        .prop_map(
            |(key, indent, before_sep, sep, after_sep, value, trailing, cont)| EntrySpec {
                key,
                indent,
                before_sep,
                sep,
                after_sep,
                value,
                trailing,
                cont,
            },
        )
}

fn section() -> impl Strategy<Value = SectionSpec> {
    (
        prop_oneof![
            6 => "[a-zA-Z0-9_.éΣ-][a-zA-Z0-9 _.éΣ-]{0,9}",
            1 => "[ a-z\\]\\[]{1,6}",
        ],
        indent(),
        prop_oneof![3 => Just(String::new()), 1 => "[ ;#a-z]{0,6}"],
        noise(),
        proptest::collection::vec((entry(), noise()), 0..7),
    )
        .prop_map(|(name, indent, junk, noise, mut entries)| {
            // Option names must be unique within a section once lower-cased.
            let mut seen = Vec::new();
            entries.retain(|(e, _)| {
                let lower = e.key.to_lowercase();
                let fresh = !seen.contains(&lower);
                seen.push(lower);
                fresh
            });
            SectionSpec {
                name,
                indent,
                junk,
                noise,
                entries,
            }
        })
}

fn file() -> impl Strategy<Value = FileSpec> {
    (
        noise(),
        proptest::collection::vec(section(), 1..6),
        prop_oneof![4 => Just("\n"), 1 => Just("\r\n"), 1 => Just("\r")],
        any::<bool>(),
    )
        .prop_map(|(preamble, mut sections, newline, final_newline)| {
            let mut seen = Vec::new();
            sections.retain(|s| {
                let ok = s.name != "DEFAULT"
                    && !s.name.trim().is_empty()
                    && !s.name.starts_with(']')
                    && !seen.contains(&s.name);
                seen.push(s.name.clone());
                ok
            });
            FileSpec {
                preamble,
                sections,
                newline,
                final_newline,
            }
        })
}

/// Renders value fragments; references point at earlier options of the section.
fn render_frags(frags: &[Frag], earlier: &[String]) -> String {
    let mut out = String::new();
    for frag in frags {
        match frag {
            Frag::Text(t) => out.push_str(t),
            Frag::Percent(p) => out.push_str(p),
            Frag::Ref(_, _) if earlier.is_empty() => out.push_str("%(none)s"),
            Frag::Ref(i, up) => {
                let name = &earlier[i % earlier.len()];
                let name = if *up {
                    name.to_ascii_uppercase()
                } else {
                    name.clone()
                };
                out.push_str(&format!("%({name})s"));
            }
        }
    }
    out
}

fn push_noise(lines: &mut Vec<String>, noise: &[Noise]) {
    for n in noise {
        match n {
            Noise::Blank(s) | Noise::Comment(s) => lines.push(s.clone()),
        }
    }
}

/// Renders a file; indentation is clamped so that option and header lines never become
/// continuation lines by accident (they may not be deeper than the option before them).
fn render(spec: &FileSpec) -> String {
    let mut lines = Vec::new();
    push_noise(&mut lines, &spec.preamble);
    let mut level: Option<usize> = None; // indent of the current option line, if any
    let clamp = |indent: &str, level: Option<usize>| -> String {
        match level {
            Some(l) => indent.chars().take(l).collect(),
            None => indent.to_owned(),
        }
    };
    for section in &spec.sections {
        let indent = clamp(&section.indent, level);
        lines.push(format!("{indent}[{}]{}", section.name, section.junk));
        level = None;
        push_noise(&mut lines, &section.noise);
        let mut earlier: Vec<String> = Vec::new();
        for (entry, noise) in &section.entries {
            let indent = clamp(&entry.indent, level);
            let value = render_frags(&entry.value, &earlier);
            lines.push(format!(
                "{indent}{}{}{}{}{value}{}",
                entry.key, entry.before_sep, entry.sep, entry.after_sep, entry.trailing
            ));
            let depth = indent.chars().count();
            level = Some(depth);
            for cont in &entry.cont {
                match cont {
                    Cont::Text(extra, frags) => {
                        let mut text = render_frags(frags, &earlier);
                        let stripped = text.trim_start_matches(|c: char| {
                            c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
                        });
                        if stripped.is_empty() || stripped.starts_with(['#', ';']) {
                            text = format!("x{text}");
                        }
                        lines.push(format!("{}{text}", " ".repeat(depth + 1 + extra)));
                    }
                    Cont::Blank(s) | Cont::Comment(s) => lines.push(s.clone()),
                }
            }
            push_noise(&mut lines, noise);
            earlier.push(entry.key.clone());
        }
    }
    let mut text = lines.join(spec.newline);
    if spec.final_newline {
        text.push_str(spec.newline);
    }
    text
}

/// Malformed files: both Python and our parser must refuse them.
const BAD_FILES: &[(&str, &str)] = &[
    ("no-delimiter", "[default]\nendpoint\n"),
    ("empty-key", "[default]\n = value\n"),
    ("before-header", "key = value\n[default]\n"),
    ("dup-section", "[a]\nk = 1\n[b]\n[a]\n"),
    ("dup-option", "[a]\nKey = 1\nkey = 2\n"),
];

/// Files ConfigParser's interpolation would refuse: RawConfigParser, and we, keep them as written.
const PERCENT_FILES: &[(&str, &str)] = &[
    ("lone-percent", "[a]\nk = 100%\n"),
    ("password", "[default]\npassword = 50%off\n"),
    ("bad-reference", "[a]\nk = %(x\n"),
    ("missing-reference", "[a]\nk = %(nothere)s\n"),
    ("reference-loop", "[a]\nk = %(j)s\nj = %(k)s\n"),
    ("percent-letter", "[a]\nk = %d\n"),
];

const PYTHON_ORACLE: &str = r#"
import configparser, json, os, sys
d = sys.argv[1]
out = {}
for name in sorted(os.listdir(d)):
    cp = configparser.RawConfigParser()
    try:
        with open(os.path.join(d, name), encoding="utf-8") as f:
            cp.read_file(f)
        out[name] = {"ok": [[s, [[k, v] for k, v in cp.items(s)]] for s in cp.sections()]}
    except Exception as e:
        out[name] = {"error": type(e).__name__ + ": " + str(e)}
json.dump(out, sys.stdout, ensure_ascii=True)
"#;

type Flat = Vec<(String, Vec<(String, String)>)>;

fn flatten(config: &RawConfig) -> Flat {
    config
        .sections
        .iter()
        .map(|s| {
            let entries = s
                .entries
                .iter()
                .map(|e| (e.key.clone(), e.value.clone()))
                .collect();
            (s.name.clone(), entries)
        })
        .collect()
}

fn python_results(dir: &Path) -> Option<BTreeMap<String, serde_json::Value>> {
    let output = match Command::new("python3")
        .arg("-c")
        .arg(PYTHON_ORACLE)
        .arg(dir)
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("cannot run python3: {e}"),
    };
    assert!(
        output.status.success(),
        "python3 oracle failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).expect("oracle JSON"))
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn parser_matches_python_configparser() {
    let dir = TempDir(
        std::env::temp_dir().join(format!("stratuslab-config-oracle-{}", std::process::id())),
    );
    std::fs::create_dir_all(&dir.0).unwrap();

    let seed = [42u8; 32];
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    );
    let strategy = file();
    let mut texts = BTreeMap::new();
    for i in 0..GENERATED_FILES {
        let spec = strategy.new_tree(&mut runner).unwrap().current();
        let name = format!("gen-{i:04}.cfg");
        let text = render(&spec);
        std::fs::write(dir.0.join(&name), &text).unwrap();
        texts.insert(name, text);
    }
    // The real reference file goes through the same comparison.
    let reference = include_str!("fixtures/config/stratuslab-user.cfg.ref");
    std::fs::write(dir.0.join("ref-stratuslab-user.cfg"), reference).unwrap();
    texts.insert("ref-stratuslab-user.cfg".to_owned(), reference.to_owned());
    for (name, text) in BAD_FILES {
        std::fs::write(dir.0.join(format!("bad-{name}.cfg")), text).unwrap();
    }
    for (name, text) in PERCENT_FILES {
        let name = format!("percent-{name}.cfg");
        std::fs::write(dir.0.join(&name), text).unwrap();
        texts.insert(name, (*text).to_owned());
    }

    let Some(python) = python_results(&dir.0) else {
        eprintln!("SKIPPED: python3 is not installed, so the configparser oracle cannot run");
        return;
    };
    assert_eq!(
        python.len(),
        GENERATED_FILES + 1 + BAD_FILES.len() + PERCENT_FILES.len()
    );

    let mut failures = Vec::new();
    let mut options_compared = 0;
    for (name, verdict) in &python {
        let ours = parse_file(&dir.0.join(name));
        if name.starts_with("bad-") {
            assert!(verdict.get("error").is_some(), "{name}: Python accepted it");
            assert!(ours.is_err(), "{name}: we accepted it: {ours:?}");
            continue;
        }
        let Some(expected) = verdict.get("ok") else {
            panic!(
                "{name}: Python refused a generated file: {verdict}\n{:?}",
                texts[name]
            );
        };
        let expected: Flat = serde_json::from_value(expected.clone()).unwrap();
        options_compared += expected.iter().map(|(_, e)| e.len()).sum::<usize>();
        match ours {
            Ok(config) if flatten(&config) == expected => {}
            Ok(config) => failures.push(format!(
                "{name}: differs\n  text: {:?}\n  python: {expected:?}\n  ours:   {:?}",
                texts[name],
                flatten(&config)
            )),
            Err(e) => failures.push(format!(
                "{name}: we refused it: {e}\n  text: {:?}",
                texts[name]
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} files differ from Python:\n{}",
        failures.len(),
        texts.len(),
        failures[..failures.len().min(5)].join("\n")
    );
    // The generator must really exercise the parser.
    assert!(options_compared > 5 * GENERATED_FILES, "{options_compared}");
}
