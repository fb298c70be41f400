//! The StratusLab user configuration file (`~/.stratuslab/stratuslab-user.cfg`, spec §6).
//!
//! Two steps:
//!
//! 1. **Parsing** ([`parse_str`], [`parse_bytes`], [`parse_file`]) reads the INI text exactly the way
//!    Python 3's `configparser.ConfigParser()` does with its defaults (strict mode,
//!    `BasicInterpolation`), which is how the StratusLab CLI and its users wrote these files:
//!    - `[section]` headers: the text between the first `[` and the *last* `]` of the line, kept as
//!      written (not lower-cased, not trimmed); anything after the last `]` is ignored;
//!    - options `key = value` or `key: value`, split at the first `=` or `:`; option names are
//!      trimmed and lower-cased; values are trimmed raw text (quotes are kept; `a = b # c` keeps
//!      `b # c`: there are no inline comments);
//!    - full-line comments start with `#` or `;` (possibly indented); they never end a value;
//!    - a line indented deeper than the line that started the current option continues its value
//!      (joined with `"\n"`); blank lines inside a value are kept, trailing ones dropped;
//!    - line ends are `\n`, `\r\n` or `\r` (Python's universal newlines);
//!    - interpolation: `%%` is a literal `%`; `%(name)s` is replaced by option `name` of the *same*
//!      section (looked up lower-cased, itself interpolated, at most 10 levels deep, as Python
//!      does); any other `%` is an error. Unlike Python, which only complains when a value is read,
//!      every value is interpolated at parse time, so a bad `%` anywhere is reported at once;
//!    - strict checks: a line without `=`/`:`, an empty option name, an option before the first
//!      header, a repeated section or a repeated option within a section are errors.
//!
//!    Deliberate differences from Python: a UTF-8 byte-order mark at the start is ignored (Python
//!    would choke on it), and a section named `DEFAULT` (ConfigParser's special section, whose
//!    options silently appear in every other section) is rejected with a clear error: StratusLab's
//!    global section is the ordinary, lower-case `[default]`. The parser is hand-written because
//!    neither `ini`/`configparser` nor `rust-ini` reproduces these rules (see the oracle test in
//!    `tests/config_oracle.rs`, which compares this parser with Python's on generated files).
//!
//! 2. **Resolving** ([`resolve`], [`resolve_without_file`]) turns the sections into cloud sites:
//!    every section except `[default]` and `[instance_types]` is a site whose settings are
//!    `[default]`'s values updated key by key by the site's own values. The *default site*
//!    (constructor argument, else `STRATUSLAB_USER_CONFIG_SECTION`, else `selected_section` in
//!    `[default]`, else `default`) additionally gets the environment ([`env_overrides`]) and then the
//!    constructor arguments layered on top: like the CLI's, those describe "the" cloud, so they
//!    never touch the other sites. `[default]` itself is a site only when it is the default site.
//!    `[instance_types]` adds to or overrides [`default_instance_types`] by name; unlike the old
//!    CLI, which dropped malformed entries silently, a malformed entry is an error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Classify, Kind};

/// How deep `%(name)s` references may nest (Python's `MAX_INTERPOLATION_DEPTH`).
const MAX_INTERPOLATION_DEPTH: usize = 10;

/// Environment variables the configuration honours, and the option each one sets.
const ENV_KEYS: &[(&str, &str)] = &[
    ("STRATUSLAB_ENDPOINT", "endpoint"),
    ("STRATUSLAB_USERNAME", "username"),
    ("STRATUSLAB_PASSWORD", "password"),
    ("STRATUSLAB_PDISK_ENDPOINT", "pdisk_endpoint"),
    ("STRATUSLAB_PDISK_USERNAME", "pdisk_username"),
    ("STRATUSLAB_PDISK_PASSWORD", "pdisk_password"),
    ("STRATUSLAB_MARKETPLACE_ENDPOINT", "marketplace_endpoint"),
    ("STRATUSLAB_PEM_CERTIFICATE", "pem_certificate"),
    ("STRATUSLAB_PEM_KEY", "pem_key"),
    ("STRATUSLAB_KEY", "user_public_key_file"),
    ("STRATUSLAB_USER_CONFIG_SECTION", "selected_section"),
];

/// The option that names the default site.
const SELECTED_SECTION: &str = "selected_section";
/// The mandatory global section.
const DEFAULT_SECTION: &str = "default";
/// The section of user-defined instance types.
const INSTANCE_TYPES_SECTION: &str = "instance_types";

/// Everything that can be wrong with the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file does not exist.
    #[error("configuration file {path} does not exist")]
    NotFound { path: String },
    /// The file exists but cannot be read.
    #[error("cannot read configuration file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The path names a directory.
    #[error("{path} is a directory, not a configuration file")]
    IsDirectory { path: String },
    /// The file is not UTF-8.
    #[error("{origin}:{line}: invalid UTF-8 at byte offset {offset}")]
    InvalidUtf8 {
        origin: String,
        line: usize,
        offset: usize,
    },
    /// A line that is neither a header, an option, a comment nor a continuation.
    #[error("{origin}:{line}: {reason}: {text}")]
    Syntax {
        origin: String,
        line: usize,
        text: String,
        reason: &'static str,
    },
    /// An option before the first `[section]` header.
    #[error("{origin}:{line}: option outside any section: add a [section] header before it")]
    NoSectionHeader { origin: String, line: usize },
    /// A `[DEFAULT]` section (ConfigParser's special section).
    #[error(
        "{origin}:{line}: section [DEFAULT] is not supported (ConfigParser would copy its options \
         into every section); the StratusLab global section is [default], in lower case"
    )]
    ReservedSection { origin: String, line: usize },
    /// A section header seen twice.
    #[error("{origin}:{line}: section [{section}] already defined at line {first_line}")]
    DuplicateSection {
        origin: String,
        line: usize,
        section: String,
        first_line: usize,
    },
    /// An option seen twice in one section.
    #[error(
        "{origin}:{line}: option '{key}' in section [{section}] already set at line {first_line}"
    )]
    DuplicateOption {
        origin: String,
        line: usize,
        section: String,
        key: String,
        first_line: usize,
    },
    /// A bad `%` in a value.
    #[error("{origin}:{line}: section [{section}], option '{key}': {reason}")]
    Interpolation {
        origin: String,
        line: usize,
        section: String,
        key: String,
        reason: String,
    },
    /// No `[default]` section.
    #[error("{origin}: the mandatory [default] section is missing")]
    MissingDefaultSection { origin: String },
    /// The chosen default site is not a section.
    #[error(
        "{origin}: default site '{site}' (from {chosen_by}) is not defined; known sites: {list}",
        list = .known.join(", ")
    )]
    UnknownSite {
        origin: String,
        site: String,
        chosen_by: &'static str,
        known: Vec<String>,
    },
    /// A malformed `[instance_types]` entry.
    #[error("{origin}:{line}: instance type '{name}': {reason}")]
    BadInstanceType {
        origin: String,
        line: usize,
        name: String,
        reason: String,
    },
    /// A setting whose value is unusable.
    #[error("{location}: site '{site}', option '{key}': {reason}")]
    BadValue {
        location: String,
        site: String,
        key: String,
        reason: String,
    },
    /// No compute endpoint for a site that needs one.
    #[error(
        "site '{site}' has no compute endpoint: set 'endpoint' in the configuration file, \
         STRATUSLAB_ENDPOINT, or the driver's host argument"
    )]
    MissingEndpoint { site: String },
}

impl Classify for ConfigError {
    fn kind(&self) -> Kind {
        Kind::Config
    }
}

/// A parsed file: its sections in file order, values interpolated but otherwise raw.
#[derive(Debug, Clone, PartialEq)]
pub struct RawConfig {
    pub origin: String,
    pub sections: Vec<RawSection>,
}

/// One `[section]` with its options in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSection {
    pub name: String,
    pub line: usize,
    pub entries: Vec<RawEntry>,
}

/// One option: lower-cased name, value (quotes kept), line of the `key = value` line.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEntry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

impl RawConfig {
    /// The section with exactly this name.
    pub fn section(&self, name: &str) -> Option<&RawSection> {
        self.sections.iter().find(|s| s.name == name)
    }
}

impl RawSection {
    /// The entry for a (lower-case) option name.
    pub fn entry(&self, key: &str) -> Option<&RawEntry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// Python's `str.isspace()`: Unicode white space plus the separators U+001C..U+001F.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()`.
fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Splits like Python's universal newlines: `\r\n`, `\n` or `\r`.
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// The text of a bad line as shown in an error, hidden when it may hold a password.
fn shown_line(line: &str) -> String {
    if line.to_lowercase().contains("password") {
        "<line hidden: it mentions a password>".to_owned()
    } else {
        line.to_owned()
    }
}

/// An option being read: its pieces (first line, continuation lines, blank lines as "").
struct PendingEntry {
    key: String,
    line: usize,
    pieces: Vec<String>,
}

/// A section being read.
struct PendingSection {
    name: String,
    line: usize,
    entries: Vec<PendingEntry>,
}

/// Parses configuration text; `origin` names it in errors (usually the file path).
pub fn parse_str(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut sections: Vec<PendingSection> = Vec::new();
    // Whether the last option of the last section may still take continuation lines.
    let mut in_option = false;
    let mut indent_level = 0usize;

    for (index, raw_line) in split_lines(text).into_iter().enumerate() {
        let lineno = index + 1;
        let value = py_strip(raw_line);
        if value.starts_with('#') || value.starts_with(';') {
            continue;
        }
        if value.is_empty() {
            if in_option {
                if let Some(entry) = sections.last_mut().and_then(|s| s.entries.last_mut()) {
                    entry.pieces.push(String::new());
                }
            }
            continue;
        }
        let cur_indent = raw_line.chars().take_while(|c| is_py_space(*c)).count();
        if in_option && cur_indent > indent_level {
            if let Some(entry) = sections.last_mut().and_then(|s| s.entries.last_mut()) {
                entry.pieces.push(value.to_owned());
            }
            continue;
        }
        indent_level = cur_indent;
        if let Some(name) = section_header(value) {
            if name == "DEFAULT" {
                return Err(ConfigError::ReservedSection {
                    origin: origin.to_owned(),
                    line: lineno,
                });
            }
            if let Some(first) = sections.iter().find(|s| s.name == name) {
                return Err(ConfigError::DuplicateSection {
                    origin: origin.to_owned(),
                    line: lineno,
                    section: name.to_owned(),
                    first_line: first.line,
                });
            }
            sections.push(PendingSection {
                name: name.to_owned(),
                line: lineno,
                entries: Vec::new(),
            });
            in_option = false;
            continue;
        }
        let Some(section) = sections.last_mut() else {
            return Err(ConfigError::NoSectionHeader {
                origin: origin.to_owned(),
                line: lineno,
            });
        };
        let Some(split) = value.find(['=', ':']) else {
            return Err(ConfigError::Syntax {
                origin: origin.to_owned(),
                line: lineno,
                text: shown_line(value),
                reason: "expected 'key = value', 'key: value' or '[section]'",
            });
        };
        let key = value[..split].trim_end_matches(is_py_space).to_lowercase();
        if key.is_empty() {
            return Err(ConfigError::Syntax {
                origin: origin.to_owned(),
                line: lineno,
                text: shown_line(value),
                reason: "empty option name",
            });
        }
        if let Some(first) = section.entries.iter().find(|e| e.key == key) {
            return Err(ConfigError::DuplicateOption {
                origin: origin.to_owned(),
                line: lineno,
                section: section.name.clone(),
                key,
                first_line: first.line,
            });
        }
        section.entries.push(PendingEntry {
            key,
            line: lineno,
            pieces: vec![py_strip(&value[split + 1..]).to_owned()],
        });
        in_option = true;
    }

    let sections = sections
        .into_iter()
        .map(|section| finish_section(section, origin))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RawConfig {
        origin: origin.to_owned(),
        sections,
    })
}

/// Python's `SECTCRE` (`\[(?P<header>.+)\]` matched at the start of the stripped line).
fn section_header(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    (end > 0).then(|| &rest[..end])
}

/// Joins continuation lines and interpolates every value of a section.
fn finish_section(section: PendingSection, origin: &str) -> Result<RawSection, ConfigError> {
    let joined: Vec<(String, usize, String)> = section
        .entries
        .into_iter()
        .map(|e| {
            let value = e.pieces.join("\n").trim_end_matches(is_py_space).to_owned();
            (e.key, e.line, value)
        })
        .collect();
    let mut entries = Vec::with_capacity(joined.len());
    for (key, line, raw) in &joined {
        let mut value = String::new();
        interpolate(&joined, raw, 1, &mut value).map_err(|reason| ConfigError::Interpolation {
            origin: origin.to_owned(),
            line: *line,
            section: section.name.clone(),
            key: key.clone(),
            reason,
        })?;
        entries.push(RawEntry {
            key: key.clone(),
            value,
            line: *line,
        });
    }
    Ok(RawSection {
        name: section.name,
        line: section.line,
        entries,
    })
}

/// Python's `BasicInterpolation._interpolate_some`; the error is a reason that never quotes the
/// value (it may be a password).
fn interpolate(
    options: &[(String, usize, String)],
    mut rest: &str,
    depth: usize,
    out: &mut String,
) -> Result<(), String> {
    if depth > MAX_INTERPOLATION_DEPTH {
        return Err(format!(
            "'%(name)s' references nest more than {MAX_INTERPOLATION_DEPTH} levels deep \
             (a reference loop?)"
        ));
    }
    while let Some(p) = rest.find('%') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        if let Some(after) = rest.strip_prefix("%%") {
            out.push('%');
            rest = after;
        } else if let Some(after) = rest.strip_prefix("%(") {
            let name = after
                .find(')')
                .filter(|&close| close > 0 && after[close + 1..].starts_with('s'))
                .map(|close| (&after[..close], &after[close + 2..]));
            let Some((name, after)) = name else {
                return Err("bad '%(name)s' reference; write '%%' for a literal '%'".to_owned());
            };
            let name = name.to_lowercase();
            let Some((_, _, v)) = options.iter().find(|(k, _, _)| *k == name) else {
                return Err(format!(
                    "'%({name})s' refers to option '{name}', which this section does not have"
                ));
            };
            if v.contains('%') {
                interpolate(options, v, depth + 1, out)?;
            } else {
                out.push_str(v);
            }
            rest = after;
        } else {
            return Err(
                "'%' must be followed by '%' or '(name)s'; write '%%' for a literal '%'".to_owned(),
            );
        }
    }
    out.push_str(rest);
    Ok(())
}

/// Parses file contents: must be UTF-8 (a leading byte-order mark is ignored).
pub fn parse_bytes(bytes: &[u8], origin: &str) -> Result<RawConfig, ConfigError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_str(text, origin),
        Err(e) => {
            let offset = e.valid_up_to();
            let before = &bytes[..offset];
            let line = 1 + before
                .iter()
                .enumerate()
                .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && before.get(i + 1) != Some(&b'\n')))
                .count();
            Err(ConfigError::InvalidUtf8 {
                origin: origin.to_owned(),
                line,
                offset,
            })
        }
    }
}

/// Reads and parses a configuration file.
pub fn parse_file(path: &Path) -> Result<RawConfig, ConfigError> {
    let shown = path.display().to_string();
    let io_error = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ConfigError::NotFound {
                path: shown.clone(),
            }
        } else {
            ConfigError::Io {
                path: shown.clone(),
                source,
            }
        }
    };
    if std::fs::metadata(path).map_err(io_error)?.is_dir() {
        return Err(ConfigError::IsDirectory { path: shown });
    }
    let bytes = std::fs::read(path).map_err(io_error)?;
    parse_bytes(&bytes, &shown)
}

/// `$HOME/.stratuslab/stratuslab-user.cfg`, or `None` without a home directory.
pub fn default_path() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(
        PathBuf::from(home)
            .join(".stratuslab")
            .join("stratuslab-user.cfg"),
    )
}

/// A machine size: CPUs, RAM and swap in MiB.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceType {
    pub name: String,
    pub cpu: u32,
    pub ram_mib: u64,
    pub swap_mib: u64,
}

/// The client's built-in instance types (spec §3.3), in the spec's order.
pub fn default_instance_types() -> Vec<InstanceType> {
    [
        ("t1.micro", 1, 512),
        ("m1.small", 1, 1536),
        ("m1.medium", 1, 3072),
        ("m1.large", 2, 6144),
        ("m1.xlarge", 4, 8192),
        ("c1.medium", 2, 1536),
        ("c1.xlarge", 4, 6144),
    ]
    .into_iter()
    .map(|(name, cpu, mib)| InstanceType {
        name: name.to_owned(),
        cpu,
        ram_mib: mib,
        swap_mib: mib,
    })
    .collect()
}

/// Reads an `[instance_types]` value: exactly three ASCII integers anywhere in the text (the
/// CLI's `re.findall('\d+', value)`), CPU > 0, RAM > 0, swap ≥ 0.
fn parse_instance_type(name: &str, value: &str) -> Result<InstanceType, String> {
    let numbers: Vec<&str> = value
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect();
    let [cpu, ram, swap] = numbers[..] else {
        return Err(format!(
            "expected three integers 'CPU, RAM MiB, swap MiB', found {}",
            numbers.len()
        ));
    };
    let too_large = |what: &str| format!("{what} value is too large");
    let cpu: u32 = cpu.parse().map_err(|_| too_large("CPU"))?;
    let ram_mib: u64 = ram.parse().map_err(|_| too_large("RAM"))?;
    let swap_mib: u64 = swap.parse().map_err(|_| too_large("swap"))?;
    if cpu == 0 {
        return Err("CPU count must be at least 1".to_owned());
    }
    if ram_mib == 0 {
        return Err("RAM must be at least 1 MiB".to_owned());
    }
    Ok(InstanceType {
        name: name.to_owned(),
        cpu,
        ram_mib,
        swap_mib,
    })
}

/// One cloud site after merging: [default] values updated key-by-key by the site's section,
/// then (for the default site only) environment, then constructor arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteSettings {
    pub name: String,
    pub values: BTreeMap<String, String>,
}

/// Strips whitespace, then one pair of matching surrounding quotes.
fn unquote(value: &str) -> &str {
    let value = value.trim();
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

/// Checks an `endpoint_timeout` value: a positive, finite number of seconds.
fn parse_timeout(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(t) if t.is_finite() && t > 0.0 => Ok(t),
        _ => Err(format!("'{value}' is not a positive number of seconds")),
    }
}

impl SiteSettings {
    /// The raw value of an option; `None` when absent or empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The `name` option without surrounding quotes, else the section name.
    pub fn display_name(&self) -> String {
        self.get("name")
            .map(unquote)
            .filter(|n| !n.is_empty())
            .unwrap_or(&self.name)
            .to_owned()
    }

    /// The `country` option without surrounding quotes, else `unknown`.
    pub fn country(&self) -> String {
        self.get("country")
            .map(unquote)
            .filter(|c| !c.is_empty())
            .unwrap_or("unknown")
            .to_owned()
    }

    /// `endpoint_timeout` in seconds, if set; it must be a positive number.
    pub fn endpoint_timeout(&self) -> Result<Option<f64>, ConfigError> {
        self.get("endpoint_timeout")
            .map(|v| {
                parse_timeout(v).map_err(|reason| ConfigError::BadValue {
                    location: "settings".to_owned(),
                    site: self.name.clone(),
                    key: "endpoint_timeout".to_owned(),
                    reason,
                })
            })
            .transpose()
    }
}

/// All sites, which one is the default, and the instance types.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub origin: Option<String>,
    pub sites: Vec<SiteSettings>,
    pub default_site: String,
    pub instance_types: Vec<InstanceType>,
}

impl Settings {
    /// The site with this name.
    pub fn site(&self, name: &str) -> Option<&SiteSettings> {
        self.sites.iter().find(|s| s.name == name)
    }
}

/// What beats the file: the default-site argument, the environment, the constructor arguments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// Constructor argument naming the default site.
    pub default_site: Option<String>,
    /// Options from `STRATUSLAB_*` variables, already mapped by [`env_overrides`].
    pub env: BTreeMap<String, String>,
    /// Constructor arguments as option names (`username`, `password`, `endpoint`, ...).
    pub args: BTreeMap<String, String>,
}

/// Maps the known `STRATUSLAB_*` variables to options (see `ENV_KEYS`); others and empty values
/// (the CLI's "unset") are ignored.
pub fn env_overrides<I: IntoIterator<Item = (String, String)>>(
    vars: I,
) -> BTreeMap<String, String> {
    vars.into_iter()
        .filter(|(_, value)| !value.is_empty())
        .filter_map(|(name, value)| {
            ENV_KEYS
                .iter()
                .find(|(var, _)| *var == name)
                .map(|(_, key)| ((*key).to_owned(), value))
        })
        .collect()
}

/// Layers the environment (minus `selected_section`, which only chooses) then the arguments.
fn layer_overrides(values: &mut BTreeMap<String, String>, overrides: &Overrides) {
    let env = overrides.env.iter().filter(|(k, _)| *k != SELECTED_SECTION);
    for (key, value) in env.chain(&overrides.args) {
        values.insert(key.clone(), value.clone());
    }
}

/// Merges the file's sections with the overrides into sites (see the module documentation).
pub fn resolve(raw: &RawConfig, overrides: &Overrides) -> Result<Settings, ConfigError> {
    let origin = &raw.origin;
    let defaults =
        raw.section(DEFAULT_SECTION)
            .ok_or_else(|| ConfigError::MissingDefaultSection {
                origin: origin.clone(),
            })?;
    let selected_in_file = defaults
        .entry(SELECTED_SECTION)
        .filter(|e| !e.value.is_empty());
    let (default_site, chosen_by) = if let Some(site) = &overrides.default_site {
        (site.clone(), "the default site argument")
    } else if let Some(site) = overrides.env.get(SELECTED_SECTION) {
        (site.clone(), "STRATUSLAB_USER_CONFIG_SECTION")
    } else if let Some(entry) = selected_in_file {
        (entry.value.clone(), "selected_section in [default]")
    } else {
        (DEFAULT_SECTION.to_owned(), "the built-in default")
    };
    let candidates = raw
        .sections
        .iter()
        .filter(|s| s.name != INSTANCE_TYPES_SECTION);
    if !candidates.clone().any(|s| s.name == default_site) {
        return Err(ConfigError::UnknownSite {
            origin: origin.clone(),
            site: default_site,
            chosen_by,
            known: candidates.map(|s| s.name.clone()).collect(),
        });
    }

    let mut sites = Vec::new();
    for section in candidates {
        let is_default = section.name == default_site;
        if section.name == DEFAULT_SECTION && !is_default {
            continue;
        }
        let mut values: BTreeMap<String, String> = defaults
            .entries
            .iter()
            .chain(&section.entries)
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect();
        if is_default {
            layer_overrides(&mut values, overrides);
        }
        let site = SiteSettings {
            name: section.name.clone(),
            values,
        };
        if let Some(value) = site.get("endpoint_timeout") {
            parse_timeout(value).map_err(|reason| ConfigError::BadValue {
                location: where_from(raw, defaults, section, is_default, overrides),
                site: site.name.clone(),
                key: "endpoint_timeout".to_owned(),
                reason,
            })?;
        }
        sites.push(site);
    }

    Ok(Settings {
        origin: Some(origin.clone()),
        sites,
        default_site,
        instance_types: instance_types(raw)?,
    })
}

/// Where a site's `endpoint_timeout` came from, for error messages.
fn where_from(
    raw: &RawConfig,
    defaults: &RawSection,
    section: &RawSection,
    is_default: bool,
    overrides: &Overrides,
) -> String {
    const KEY: &str = "endpoint_timeout";
    if is_default && overrides.args.contains_key(KEY) {
        return "constructor argument".to_owned();
    }
    if is_default && overrides.env.contains_key(KEY) {
        return "environment".to_owned();
    }
    match section.entry(KEY).or_else(|| defaults.entry(KEY)) {
        Some(entry) => format!("{}:{}", raw.origin, entry.line),
        None => raw.origin.clone(),
    }
}

/// The default instance types updated by `[instance_types]` (same name: replaced in place; new
/// name: appended in file order).
fn instance_types(raw: &RawConfig) -> Result<Vec<InstanceType>, ConfigError> {
    let mut types = default_instance_types();
    let Some(section) = raw.section(INSTANCE_TYPES_SECTION) else {
        return Ok(types);
    };
    for entry in &section.entries {
        let parsed = parse_instance_type(&entry.key, &entry.value).map_err(|reason| {
            ConfigError::BadInstanceType {
                origin: raw.origin.clone(),
                line: entry.line,
                name: entry.key.clone(),
                reason,
            }
        })?;
        match types.iter_mut().find(|t| t.name == parsed.name) {
            Some(existing) => *existing = parsed,
            None => types.push(parsed),
        }
    }
    Ok(types)
}

/// Settings with no file: one site, `default`, from the environment then the arguments. Its
/// `endpoint` is required; a default-site argument other than `default` is an error.
pub fn resolve_without_file(overrides: &Overrides) -> Result<Settings, ConfigError> {
    if let Some(site) = overrides
        .default_site
        .as_ref()
        .filter(|s| *s != DEFAULT_SECTION)
    {
        return Err(ConfigError::UnknownSite {
            origin: "no configuration file".to_owned(),
            site: site.clone(),
            chosen_by: "the default site argument",
            known: vec![DEFAULT_SECTION.to_owned()],
        });
    }
    let mut values = BTreeMap::new();
    layer_overrides(&mut values, overrides);
    let site = SiteSettings {
        name: DEFAULT_SECTION.to_owned(),
        values,
    };
    if site.get("endpoint").is_none() {
        return Err(ConfigError::MissingEndpoint { site: site.name });
    }
    if let Some(value) = site.get("endpoint_timeout") {
        parse_timeout(value).map_err(|reason| ConfigError::BadValue {
            location: "constructor argument".to_owned(),
            site: site.name.clone(),
            key: "endpoint_timeout".to_owned(),
            reason,
        })?;
    }
    Ok(Settings {
        origin: None,
        sites: vec![site],
        default_site: DEFAULT_SECTION.to_owned(),
        instance_types: default_instance_types(),
    })
}
