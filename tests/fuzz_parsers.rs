//! Mutation fuzzing of every reader of untrusted bytes: the XML-RPC response decoder (and the
//! call decoder the local cloud uses), the OpenNebula VM/pool reader, the Marketplace RDF reader,
//! the pdisk JSON readers and the configuration parser.
//!
//! cargo-fuzz and libFuzzer need a nightly compiler; this is a small in-repo mutation fuzzer on
//! stable: seeds from `fuzz/corpus/<target>/` (real fixtures, see its SOURCES.md), stacked
//! byte-level and token mutations (bit flips, interesting bytes and numbers, deletions,
//! insertions, duplications, long repetitions for deep nesting, dictionary tokens, splices with
//! other seeds, truncations), and a cheap novelty signal: an input whose outcome (Ok, or the
//! error's message with digits removed) was not seen before joins the working corpus.
//!
//! Checked for every execution: no panic (caught, the input saved under the target directory's
//! `tmp/fuzz-crashes/`; add it to the corpus once fixed), and no
//! error message longer than `2 × input + 2 KiB` (no message quoting a whole 50 MB reply).
//!
//! `STRATUSLAB_FUZZ_EXECS` executions per target (default 20,000: the CI run);
//! `STRATUSLAB_FUZZ_SEED` the PRNG seed. `make fuzz` runs 2,000,000 per target in release mode.

use std::collections::HashSet;
use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use _stratuslab::config::{parse_bytes, resolve, Overrides};
use _stratuslab::marketplace::{parse_entry, parse_listing};
use _stratuslab::one::vm::{parse_pool, parse_vm};
use _stratuslab::pdisk::{
    error_details, parse_disk, parse_disk_list, parse_mounts, parse_target, parse_uuid,
};
use _stratuslab::xmlrpc::{decode_call, decode_response};

const MAX_INPUT: usize = 256 * 1024;

/// xorshift64*: small, fast, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

const INTERESTING_BYTES: &[u8] = b"\x00\xff\x7f\x80\xc3\xa9<>&\"'\n\r\t []{},:=%\\/;#$@-_.09aZ";
const INTERESTING_NUMBERS: &[&str] = &[
    "-1",
    "0",
    "00",
    "-0",
    "2147483648",
    "4294967296",
    "9223372036854775808",
    "-9223372036854775809",
    "99999999999999999999999999",
    "1e308",
    "1e-400",
    "NaN",
    "inf",
    "1,500,000,000",
    "1.5",
    "0x10",
    "+7",
    " 7 ",
];

/// A fuzz target: its corpus folder, tokens worth inserting, and the code under test.
struct Target {
    name: &'static str,
    dictionary: &'static [&'static str],
    run: fn(&[u8]) -> Outcome,
}

/// What one execution returned: Ok, or the errors' text.
enum Outcome {
    Ok,
    Err(String),
}

/// The outcome of one reader. Its error message must stay bounded: a panic here (caught and
/// reported with the input) if it is longer than `2 × input + 2 KiB`.
fn outcome<T, E: Display>(data: &[u8], result: Result<T, E>) -> Outcome {
    match result {
        Ok(_) => Outcome::Ok,
        Err(e) => {
            let message = e.to_string();
            if message.len() > 2 * data.len() + 2048 {
                let start: String = message.chars().take(200).collect();
                panic!(
                    "a {}-byte error message for a {}-byte input: {start}",
                    message.len(),
                    data.len()
                );
            }
            Outcome::Err(message)
        }
    }
}

/// Several readers of the same input: Ok when one accepts it, else all their errors.
fn any_ok(outcomes: impl IntoIterator<Item = Outcome>) -> Outcome {
    let mut errors = Vec::new();
    for o in outcomes {
        match o {
            Outcome::Ok => return Outcome::Ok,
            Outcome::Err(e) => errors.push(e),
        }
    }
    Outcome::Err(errors.join(" | "))
}

const XML_TOKENS: &[&str] = &[
    "<?xml version=\"1.0\"?>",
    "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>",
    "<!DOCTYPE x [<!ENTITY e \"&e;&e;\">]>",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "&amp;",
    "&lt;",
    "&#0;",
    "&#x110000;",
    "&#xD800;",
    "&unknown;",
    "xmlns=\"\"",
    "xmlns:x=\"urn:x\"",
    "\u{feff}",
    "</",
    "/>",
];

fn xmlrpc_response(data: &[u8]) -> Outcome {
    outcome(data, decode_response(data))
}

fn xmlrpc_call(data: &[u8]) -> Outcome {
    outcome(data, decode_call(data))
}

fn vm(data: &[u8]) -> Outcome {
    any_ok([
        outcome(data, parse_vm(data)),
        outcome(data, parse_pool(data)),
    ])
}

fn rdf(data: &[u8]) -> Outcome {
    let listing = match parse_listing(data) {
        Ok(entries) => {
            let entries: Vec<Outcome> = entries.into_iter().map(|e| outcome(data, e)).collect();
            let errors: Vec<String> = entries
                .into_iter()
                .filter_map(|o| match o {
                    Outcome::Err(e) => Some(e),
                    Outcome::Ok => None,
                })
                .collect();
            if errors.is_empty() {
                Outcome::Ok
            } else {
                Outcome::Err(errors.join(" | "))
            }
        }
        Err(e) => outcome(data, Err::<(), _>(e)),
    };
    any_ok([listing, outcome(data, parse_entry(data))])
}

fn pdisk(data: &[u8]) -> Outcome {
    if let (_, Some(message)) = error_details(data) {
        outcome(data, Err::<(), _>(message));
    }
    any_ok([
        outcome(data, parse_disk_list(data)),
        outcome(data, parse_disk(data)),
        outcome(data, parse_uuid(data)),
        outcome(data, parse_mounts(data)),
        outcome(data, parse_target(data)),
    ])
}

fn config(data: &[u8]) -> Outcome {
    match parse_bytes(data, "fuzz.cfg") {
        Ok(raw) => outcome(data, resolve(&raw, &Overrides::default())),
        Err(e) => outcome(data, Err::<(), _>(e)),
    }
}

const TARGETS: &[Target] = &[
    Target {
        name: "xmlrpc_response",
        dictionary: &[
            "<methodResponse>",
            "<params><param>",
            "<value>",
            "</value>",
            "<array><data>",
            "</data></array>",
            "<struct><member><name>",
            "</name>",
            "<string>",
            "<i4>",
            "<int>",
            "<i8>",
            "<boolean>",
            "<double>",
            "<base64>",
            "<dateTime.iso8601>",
            "<nil/>",
            "<fault>",
            "faultCode",
        ],
        run: xmlrpc_response,
    },
    Target {
        name: "xmlrpc_call",
        dictionary: &[
            "<methodCall>",
            "<methodName>",
            "</methodName>",
            "<params>",
            "<param>",
            "<value>",
            "<string>",
            "<int>",
            "<array><data>",
        ],
        run: xmlrpc_call,
    },
    Target {
        name: "vm",
        dictionary: &[
            "<VM>",
            "</VM>",
            "<VM_POOL>",
            "<ID>",
            "<STATE>",
            "<LCM_STATE>",
            "<TEMPLATE>",
            "<DISK>",
            "<NIC>",
            "<IP>",
            "<HISTORY_RECORDS>",
            "<HISTORY>",
            "<HOSTNAME>",
            "<MEMORY>",
            "<CPU>",
            "<VCPU>",
            "<STIME>",
            "<CONTEXT>",
        ],
        run: vm,
    },
    Target {
        name: "rdf",
        dictionary: &[
            "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">",
            "<rdf:Description rdf:about=\"#",
            "rdf:parseType=\"Resource\"",
            "xml:base=\"http://mp.stratuslab.eu/\"",
            "<dcterms:identifier>",
            "<dcterms:valid>",
            "<dcterms:created>",
            "<slreq:endorsement>",
            "<slreq:endorser>",
            "<slreq:email>",
            "<slreq:checksum>",
            "<slreq:value>",
            "<slterms:deprecated>",
            "<slterms:location>",
            "<slterms:inbound-port>",
            "<Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\">",
            "<metadata>",
            "2038-01-19T03:14:08Z",
        ],
        run: rdf,
    },
    Target {
        name: "pdisk",
        dictionary: &[
            "\"uuid\"",
            "\"count\"",
            "\"size\"",
            "\"owner\"",
            "\"tag\"",
            "\"type\"",
            "\"visibility\"",
            "\"vmId\"",
            "\"device\"",
            "\"target\"",
            "\"message\"",
            "\"code\"",
            "ERROR (404): ",
            "null",
            "true",
            "[[[[[[[[",
            "{\"a\":{\"a\":",
            "\\u0000",
            "\\ud800",
        ],
        run: pdisk,
    },
    Target {
        name: "config",
        dictionary: &[
            "[default]\n",
            "[instance_types]\n",
            "selected_section = ",
            "endpoint = ",
            "pdisk_endpoint = ",
            "endpoint_timeout = ",
            "username = ",
            "password = ",
            "%(",
            ")s",
            "%%",
            "\n  continued",
            "\n; comment\n",
            "\n# comment\n",
            " = (1, 512, 1024)\n",
            "https://[::1]:2634/x",
        ],
        run: config,
    },
];

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus")
        .join(target)
}

fn load_corpus(target: &str) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(corpus_dir(target))
        .unwrap_or_else(|e| panic!("corpus of {target}: {e}"))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).expect("corpus file"))
        .collect()
}

fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>], dictionary: &[&str]) -> Vec<u8> {
    let mut data = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = data.len();
        match rng.below(12) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())];
            }
            2 if len > 0 => {
                let at = rng.below(len);
                let span = if rng.chance(4) { len } else { 16 };
                let n = 1 + rng.below((len - at).min(span));
                data.drain(at..at + n.min(len - at));
            }
            3 => {
                let at = rng.below(len + 1);
                let bytes: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
                data.splice(at..at, bytes);
            }
            4 if len > 0 => {
                let from = rng.below(len);
                let n = 1 + rng.below((len - from).min(64));
                let chunk = data[from..from + n].to_vec();
                let at = rng.below(len + 1);
                data.splice(at..at, chunk);
            }
            5 => {
                let token = dictionary
                    .get(rng.below(dictionary.len() + XML_TOKENS.len()))
                    .copied()
                    .unwrap_or_else(|| XML_TOKENS[rng.below(XML_TOKENS.len())]);
                let at = rng.below(len + 1);
                data.splice(at..at, token.bytes());
            }
            6 if !corpus.is_empty() => {
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            7 if len > 0 => data.truncate(rng.below(len)),
            8 => {
                // A digit run becomes an interesting number.
                let digits: Vec<usize> = (0..len).filter(|&i| data[i].is_ascii_digit()).collect();
                if let Some(&start) = digits.get(rng.below(digits.len())) {
                    let end = (start..len)
                        .find(|&i| !data[i].is_ascii_digit())
                        .unwrap_or(len);
                    let number = INTERESTING_NUMBERS[rng.below(INTERESTING_NUMBERS.len())];
                    data.splice(start..end, number.bytes());
                }
            }
            9 if len > 0 => {
                // Long repetition of a short chunk: deep nesting, huge tokens.
                let from = rng.below(len);
                let n = 1 + rng.below((len - from).min(32));
                let chunk = data[from..from + n].to_vec();
                let most = if rng.chance(8) { 5000 } else { 64 };
                let times = 2 + rng.below(most);
                let repeated: Vec<u8> = chunk.iter().copied().cycle().take(n * times).collect();
                data.splice(from..from, repeated);
            }
            10 if len > 1 => {
                // Swap two bytes far apart (tags and quotes out of order).
                let (a, b) = (rng.below(len), rng.below(len));
                data.swap(a, b);
            }
            _ => {
                let token = dictionary[rng.below(dictionary.len())];
                let at = rng.below(len + 1);
                let mut wrapped = token.as_bytes().to_vec();
                if let Some(stripped) = token.strip_prefix('<') {
                    wrapped.extend_from_slice(b"x</");
                    wrapped.extend_from_slice(
                        stripped
                            .split([' ', '>', '/'])
                            .next()
                            .unwrap_or("")
                            .as_bytes(),
                    );
                    wrapped.push(b'>');
                }
                data.splice(at..at, wrapped);
            }
        }
    }
    data.truncate(MAX_INPUT);
    data
}

/// The outcome's shape: Ok, or the message without digits (ids, offsets) and cut short.
fn signature(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ok => "ok".to_owned(),
        Outcome::Err(message) => message
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .take(60)
            .collect(),
    }
}

fn save_crash(target: &str, data: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-crashes");
    std::fs::create_dir_all(&dir).expect("crash folder");
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    let path = dir.join(format!("{target}-{hash:016x}"));
    std::fs::write(&path, data).expect("crash file");
    path
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn fuzz(name: &str) {
    let target = TARGETS
        .iter()
        .find(|t| t.name == name)
        .expect("known target");
    let execs = env_number("STRATUSLAB_FUZZ_EXECS", 20_000);
    let seed = env_number("STRATUSLAB_FUZZ_SEED", 0x5EED_1234_ABCD_0001);
    let mut rng = Rng(seed
        ^ name
            .bytes()
            .fold(0_u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        | 1);
    let seeds = load_corpus(name);
    assert!(!seeds.is_empty(), "empty corpus for {name}");
    let mut corpus = seeds.clone();
    let mut seen = HashSet::new();
    let started = Instant::now();
    let mut oks = 0_u64;
    for n in 0..execs {
        // Every seed first, unmutated; then mutations of the working corpus.
        let data = match seeds.get(n as usize) {
            Some(s) => s.clone(),
            None => {
                let base = &corpus[rng.below(corpus.len())];
                mutate(&mut rng, base, &corpus, target.dictionary)
            }
        };
        let result = catch_unwind(AssertUnwindSafe(|| (target.run)(&data)));
        let outcome = match result {
            Ok(o) => o,
            Err(panic) => {
                let path = save_crash(name, &data);
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                panic!(
                    "fuzz {name}: panic on execution {n} ({what}); input saved to {}",
                    path.display()
                );
            }
        };
        if matches!(outcome, Outcome::Ok) {
            oks += 1;
        }
        if seen.insert(signature(&outcome)) && corpus.len() < 4096 {
            corpus.push(data);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "fuzz {name}: {execs} executions in {seconds:.1} s ({:.0}/s), {} seeds, {} distinct outcomes, {} ok, 0 panics",
        execs as f64 / seconds.max(1e-9),
        seeds.len(),
        seen.len(),
        oks
    );
}

#[test]
fn fuzz_xmlrpc_response() {
    fuzz("xmlrpc_response");
}

#[test]
fn fuzz_xmlrpc_call() {
    fuzz("xmlrpc_call");
}

#[test]
fn fuzz_vm_documents() {
    fuzz("vm");
}

#[test]
fn fuzz_marketplace_rdf() {
    fuzz("rdf");
}

#[test]
fn fuzz_pdisk_json() {
    fuzz("pdisk");
}

#[test]
fn fuzz_config() {
    fuzz("config");
}

#[test]
fn every_seed_is_accepted_or_refused_as_its_fixture_says() {
    // The corpus is real: the valid fixtures parse, so mutations start from deep inside the
    // readers rather than from their first error.
    let ok = |target: &str, name: &str| {
        let data = std::fs::read(corpus_dir(target).join(name)).expect(name);
        let t = TARGETS.iter().find(|t| t.name == target).expect(target);
        matches!((t.run)(&data), Outcome::Ok)
    };
    assert!(ok("vm", "vm-info.xml") && ok("vm", "vmpool-info-all.xml"));
    assert!(parse_vm(&std::fs::read(corpus_dir("vm").join("vm-info.xml")).expect("vm")).is_ok());
    assert!(parse_pool(
        &std::fs::read(corpus_dir("vm").join("vmpool-info-all.xml")).expect("pool")
    )
    .is_ok());
    assert!(ok("config", "stratuslab-user.cfg.ref"));
    assert!(parse_disk_list(
        &std::fs::read(corpus_dir("pdisk").join("disks-list.json")).expect("list")
    )
    .is_ok());
    let listing = std::fs::read(corpus_dir("rdf").join("valid-multiple-entries.xml")).expect("rdf");
    assert!(parse_listing(&listing)
        .expect("listing")
        .iter()
        .all(Result::is_ok));
    let responses = load_corpus("xmlrpc_response");
    assert!(responses.iter().all(|r| !matches!(
        decode_response(r),
        Err(_stratuslab::xmlrpc::XmlRpcError::Malformed { .. })
    )));
}
