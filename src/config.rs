//! The StratusLab user configuration file (`~/.stratuslab/stratuslab-user.cfg`, spec §6).
//!
//! Two steps:
//!
//! 1. **Parsing** ([`parse_str`], [`parse_bytes`], [`parse_file`]) reads the INI text exactly the way
//!    Python 3's `configparser.RawConfigParser()` does with its defaults (strict mode, no
//!    interpolation), which is how the StratusLab CLI (its `UserConfigurator`) read these files,
//!    and so how its users wrote them:
//!    - `[section]` headers: the text between the first `[` and the *last* `]` of the line, kept as
//!      written (not lower-cased, not trimmed); anything after the last `]` is ignored;
//!    - options `key = value` or `key: value`, split at the first `=` or `:`; option names are
//!      trimmed and lower-cased; values are trimmed raw text (quotes are kept; `a = b # c` keeps
//!      `b # c`: there are no inline comments);
//!    - full-line comments start with `#` or `;` (possibly indented); they never end a value;
//!    - a line indented deeper than the line that started the current option continues its value
//!      (joined with `"\n"`); blank lines inside a value are kept, trailing ones dropped;
//!    - line ends are `\n`, `\r\n` or `\r` (Python's universal newlines);
//!    - no interpolation: every character of a value is kept as written (`50%off` is `50%off`,
//!      `%%` is two `%`, `%(name)s` is that text);
//!    - strict checks: a line without `=`/`:`, an empty option name, an option before the first
//!      header, a repeated section or a repeated option within a section are errors.
//!
//!    Deliberate differences from Python: a UTF-8 byte-order mark at the start is ignored (Python
//!    would choke on it), and a section named `DEFAULT` (RawConfigParser's special section, whose
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
    /// No `[default]` section.
    #[error("{origin}: the mandatory [default] section is missing")]
    MissingDefaultSection { origin: String },
    /// The chosen default site is not a section.
    #[error(
        "{origin}: default site '{site}' (from {chosen_by}) is not defined; known sites: {list}",
        site = quoted(.site),
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

/// A parsed file: its sections in file order, values as written (continuation lines joined).
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

    let sections = sections.into_iter().map(finish_section).collect();
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

/// Joins the continuation lines of every value of a section (values are otherwise kept as
/// written: no interpolation, as `RawConfigParser`).
fn finish_section(section: PendingSection) -> RawSection {
    let entries = section
        .entries
        .into_iter()
        .map(|e| RawEntry {
            value: e.pieces.join("\n").trim_end_matches(is_py_space).to_owned(),
            key: e.key,
            line: e.line,
        })
        .collect();
    RawSection {
        name: section.name,
        line: section.line,
        entries,
    }
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

/// A value for an error message: at most 100 characters of it (a file's line can be long).
fn quoted(value: &str) -> String {
    match value.char_indices().nth(100) {
        Some((at, _)) => format!("{}…", &value[..at]),
        None => value.to_owned(),
    }
}

/// Checks an `endpoint_timeout` value: a positive, finite number of seconds.
fn parse_timeout(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(t) if t.is_finite() && t > 0.0 => Ok(t),
        _ => Err(format!(
            "'{}' is not a positive number of seconds",
            quoted(value)
        )),
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
    // The line is named in errors when the file made the choice.
    let (default_site, chosen_by, line) = if let Some(site) = &overrides.default_site {
        (site.clone(), "the default site argument", None)
    } else if let Some(site) = overrides.env.get(SELECTED_SECTION) {
        (site.clone(), "STRATUSLAB_USER_CONFIG_SECTION", None)
    } else if let Some(entry) = selected_in_file {
        (
            entry.value.clone(),
            "selected_section in [default]",
            Some(entry.line),
        )
    } else {
        (DEFAULT_SECTION.to_owned(), "the built-in default", None)
    };
    let candidates = raw
        .sections
        .iter()
        .filter(|s| s.name != INSTANCE_TYPES_SECTION);
    if !candidates.clone().any(|s| s.name == default_site) {
        return Err(ConfigError::UnknownSite {
            origin: match line {
                Some(line) => format!("{origin}:{line}"),
                None => origin.clone(),
            },
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
/// `endpoint` is required; a default-site argument other than `default` is an error, while
/// `STRATUSLAB_USER_CONFIG_SECTION` is ignored (it names a section of a file there is not).
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

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE: &str = include_str!("../tests/fixtures/config/stratuslab-user.cfg.ref");

    fn entry(key: &str, value: &str, line: usize) -> RawEntry {
        RawEntry {
            key: key.to_owned(),
            value: value.to_owned(),
            line,
        }
    }

    fn parse(text: &str) -> RawConfig {
        parse_str(text, "t.cfg").unwrap()
    }

    fn parse_err(text: &str) -> ConfigError {
        parse_str(text, "t.cfg").unwrap_err()
    }

    fn resolve_err(text: &str, overrides: &Overrides) -> ConfigError {
        resolve(&parse(text), overrides).unwrap_err()
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn reference_file_parses_to_exact_values() {
        let config = parse_str(REFERENCE, "stratuslab-user.cfg.ref").unwrap();
        let expected = RawConfig {
            origin: "stratuslab-user.cfg.ref".to_owned(),
            sections: vec![
                RawSection {
                    name: "default".to_owned(),
                    line: 10,
                    entries: vec![
                        entry("selected_section", "sl-cloud", 14),
                        entry("endpoint_timeout", "5", 18),
                    ],
                },
                RawSection {
                    name: "sl-cloud".to_owned(),
                    line: 24,
                    entries: vec![
                        entry("name", "\"StratusLab Cloud\"", 29),
                        entry("country", "\"Earth\"", 30),
                        entry("endpoint", "https://cloud.example.com/one-proxy/xmlrpc", 34),
                        entry("pdisk_endpoint", "https://cloud.example.com/pdisk", 35),
                        entry("username", "username", 44),
                        entry("password", "password", 45),
                    ],
                },
                RawSection {
                    name: "instance_types".to_owned(),
                    line: 91,
                    entries: vec![],
                },
            ],
        };
        assert_eq!(config, expected);
    }

    #[test]
    fn reference_file_resolves_to_its_selected_section() {
        let config = parse_str(REFERENCE, "ref").unwrap();
        let settings = resolve(&config, &Overrides::default()).unwrap();
        assert_eq!(settings.origin.as_deref(), Some("ref"));
        assert_eq!(settings.default_site, "sl-cloud");
        assert_eq!(settings.sites.len(), 1);
        let site = &settings.sites[0];
        assert_eq!(site.name, "sl-cloud");
        assert_eq!(
            site.values,
            map(&[
                ("selected_section", "sl-cloud"),
                ("endpoint_timeout", "5"),
                ("name", "\"StratusLab Cloud\""),
                ("country", "\"Earth\""),
                ("endpoint", "https://cloud.example.com/one-proxy/xmlrpc"),
                ("pdisk_endpoint", "https://cloud.example.com/pdisk"),
                ("username", "username"),
                ("password", "password"),
            ])
        );
        assert_eq!(site.display_name(), "StratusLab Cloud");
        assert_eq!(site.country(), "Earth");
        assert_eq!(site.endpoint_timeout().unwrap(), Some(5.0));
        assert_eq!(site.get("marketplace_endpoint"), None);
        assert_eq!(settings.instance_types, default_instance_types());
    }

    #[test]
    fn python_syntax_details() {
        let config = parse(concat!(
            "[Sl-Cloud] trailing text\n",
            "  Key.One = a = b # not a comment\n",
            "other: \"quoted\" \n",
            "multi =\n",
            "    first\n",
            "\n",
            "    # a comment does not end the value\n",
            "    second\n",
            "\n",
            "\n",
            "pct = 100%% of %(OTHER)s\n",
            "raw = 50%off\n",
            "[a]b]\r\n",
            "empty =\r",
            "k=v",
        ));
        let names: Vec<&str> = config.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Sl-Cloud", "a]b"]);
        assert_eq!(
            config.sections[0].entries,
            vec![
                entry("key.one", "a = b # not a comment", 2),
                entry("other", "\"quoted\"", 3),
                entry("multi", "\nfirst\n\nsecond", 4),
                entry("pct", "100%% of %(OTHER)s", 11),
                entry("raw", "50%off", 12),
            ]
        );
        assert_eq!(
            config.sections[1].entries,
            vec![entry("empty", "", 14), entry("k", "v", 15)]
        );
        let bom = parse("\u{feff}[default]\nk = v\n");
        assert_eq!(bom.sections[0].name, "default");
    }

    #[test]
    fn builtin_instance_types_follow_the_spec() {
        let table: Vec<(String, u32, u64, u64)> = default_instance_types()
            .into_iter()
            .map(|t| (t.name, t.cpu, t.ram_mib, t.swap_mib))
            .collect();
        let expected = [
            ("t1.micro", 1, 512, 512),
            ("m1.small", 1, 1536, 1536),
            ("m1.medium", 1, 3072, 3072),
            ("m1.large", 2, 6144, 6144),
            ("m1.xlarge", 4, 8192, 8192),
            ("c1.medium", 2, 1536, 1536),
            ("c1.xlarge", 4, 6144, 6144),
        ]
        .map(|(n, c, r, s)| (n.to_owned(), c, r, s));
        assert_eq!(table, expected);
    }

    // ---- errors -------------------------------------------------------------------------------

    #[test]
    fn missing_default_section() {
        let err = resolve_err("[sl]\nendpoint = x\n", &Overrides::default());
        assert!(matches!(&err, ConfigError::MissingDefaultSection { origin } if origin == "t.cfg"));
        assert_eq!(
            err.to_string(),
            "t.cfg: the mandatory [default] section is missing"
        );
        assert_eq!(err.kind(), Kind::Config);
    }

    #[test]
    fn unknown_selected_section() {
        let err = resolve_err(
            "[default]\nselected_section = nowhere\n[a]\n[instance_types]\n",
            &Overrides::default(),
        );
        assert!(matches!(&err, ConfigError::UnknownSite { site, known, .. }
            if site == "nowhere" && *known == ["default", "a"]));
        assert_eq!(
            err.to_string(),
            "t.cfg:2: default site 'nowhere' (from selected_section in [default]) is not defined; \
             known sites: default, a"
        );
    }

    #[test]
    fn unknown_default_site_argument_and_environment() {
        let text = "[default]\nselected_section = a\n[a]\n[b]\n";
        let overrides = Overrides {
            default_site: Some("c".to_owned()),
            ..Overrides::default()
        };
        assert_eq!(
            resolve_err(text, &overrides).to_string(),
            "t.cfg: default site 'c' (from the default site argument) is not defined; \
             known sites: default, a, b"
        );
        let overrides = Overrides {
            env: map(&[("selected_section", "d")]),
            ..Overrides::default()
        };
        assert_eq!(
            resolve_err(text, &overrides).to_string(),
            "t.cfg: default site 'd' (from STRATUSLAB_USER_CONFIG_SECTION) is not defined; \
             known sites: default, a, b"
        );
    }

    #[test]
    fn instance_type_with_two_numbers() {
        let err = resolve_err(
            "[default]\n[instance_types]\nmy.type = 4, 2048\n",
            &Overrides::default(),
        );
        assert!(
            matches!(&err, ConfigError::BadInstanceType { name, line: 3, .. }
            if name == "my.type")
        );
        assert_eq!(
            err.to_string(),
            "t.cfg:3: instance type 'my.type': expected three integers 'CPU, RAM MiB, swap MiB', \
             found 2"
        );
    }

    #[test]
    fn instance_type_with_zero_cpu_or_ram_or_huge_numbers() {
        let cases = [
            (
                "tiny = 0, 512, 0",
                "t.cfg:3: instance type 'tiny': CPU count must be at least 1",
            ),
            (
                "tiny = 1, 0, 0",
                "t.cfg:3: instance type 'tiny': RAM must be at least 1 MiB",
            ),
            (
                "tiny = 4294967296, 1, 1",
                "t.cfg:3: instance type 'tiny': CPU value is too large",
            ),
            (
                "tiny = one, two, three",
                "t.cfg:3: instance type 'tiny': expected three integers 'CPU, RAM MiB, swap MiB', \
                 found 0",
            ),
        ];
        for (line, message) in cases {
            let text = format!("[default]\n[instance_types]\n{line}\n");
            let err = resolve_err(&text, &Overrides::default());
            assert!(matches!(err, ConfigError::BadInstanceType { .. }), "{line}");
            assert_eq!(err.to_string(), message);
        }
    }

    /// A fresh temporary directory for this test, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("stratuslab-config-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn file_errors() {
        let dir = TempDir::new("files");
        let missing = dir.0.join("missing.cfg");
        let err = parse_file(&missing).unwrap_err();
        assert!(matches!(err, ConfigError::NotFound { .. }));
        assert_eq!(
            err.to_string(),
            format!("configuration file {} does not exist", missing.display())
        );

        let err = parse_file(&dir.0).unwrap_err();
        assert!(matches!(err, ConfigError::IsDirectory { .. }));
        assert_eq!(
            err.to_string(),
            format!(
                "{} is a directory, not a configuration file",
                dir.0.display()
            )
        );

        // Unreadable: a path that goes through a regular file (fails even for root).
        let file = dir.0.join("file.cfg");
        std::fs::write(&file, "[default]\n").unwrap();
        let through = file.join("x.cfg");
        let err = parse_file(&through).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Io { path, .. } if *path == through.display().to_string())
        );
        assert!(
            err.to_string().starts_with(&format!(
                "cannot read configuration file {}: ",
                through.display()
            )),
            "{err}"
        );

        let config = parse_file(&file).unwrap();
        assert_eq!(config.origin, file.display().to_string());
        assert_eq!(config.sections[0].name, "default");
    }

    #[test]
    fn invalid_utf8() {
        let err = parse_bytes(b"[default]\r\nname = caf\xe9\n", "t.cfg").unwrap_err();
        assert!(matches!(
            err,
            ConfigError::InvalidUtf8 {
                line: 2,
                offset: 21,
                ..
            }
        ));
        assert_eq!(err.to_string(), "t.cfg:2: invalid UTF-8 at byte offset 21");
    }

    #[test]
    fn duplicate_section() {
        let err = parse_err("[default]\n[a]\nk = 1\n[a]\n");
        assert!(
            matches!(&err, ConfigError::DuplicateSection { section, line: 4, first_line: 2, .. }
            if section == "a")
        );
        assert_eq!(
            err.to_string(),
            "t.cfg:4: section [a] already defined at line 2"
        );
        // Section names are case-sensitive, as in Python.
        assert_eq!(parse("[a]\n[A]\n").sections.len(), 2);
    }

    #[test]
    fn duplicate_option() {
        let err = parse_err("[default]\nEndpoint = a\n\nendpoint = b\n");
        assert!(
            matches!(&err, ConfigError::DuplicateOption { key, line: 4, first_line: 2, .. }
            if key == "endpoint")
        );
        assert_eq!(
            err.to_string(),
            "t.cfg:4: option 'endpoint' in section [default] already set at line 2"
        );
    }

    #[test]
    fn line_without_delimiter() {
        let err = parse_err("[default]\nendpoint example.org\n");
        assert!(matches!(&err, ConfigError::Syntax { line: 2, text, .. }
            if text == "endpoint example.org"));
        assert_eq!(
            err.to_string(),
            "t.cfg:2: expected 'key = value', 'key: value' or '[section]': endpoint example.org"
        );
        // The text of a line that mentions a password is not shown.
        assert_eq!(
            parse_err("[default]\npassword s3cret\n").to_string(),
            "t.cfg:2: expected 'key = value', 'key: value' or '[section]': \
             <line hidden: it mentions a password>"
        );
        assert_eq!(
            parse_err("[default]\n  = x\n").to_string(),
            "t.cfg:2: empty option name: = x"
        );
        assert_eq!(
            parse_err("[]\n").to_string(),
            "t.cfg:1: option outside any section: add a [section] header before it"
        );
    }

    #[test]
    fn option_before_header_and_reserved_default() {
        let err = parse_err("# c\nk = v\n[default]\n");
        assert!(matches!(err, ConfigError::NoSectionHeader { line: 2, .. }));
        let err = parse_err("[default]\n[DEFAULT]\n");
        assert!(matches!(err, ConfigError::ReservedSection { line: 2, .. }));
        assert!(err
            .to_string()
            .starts_with("t.cfg:2: section [DEFAULT] is not supported"));
    }

    #[test]
    fn percent_signs_are_kept_as_written() {
        // RawConfigParser: no interpolation, so nothing about `%` can be an error.
        for value in [
            "50%off",
            "100%",
            "%(x",
            "%(nothere)s",
            "%d",
            "%%",
            "a%%b%(c)s%",
        ] {
            let config = parse(&format!("[s]\npassword = {value}\nk = {value}\n"));
            let entries = &config.sections[0].entries;
            assert_eq!(entries[0].value, value);
            assert_eq!(entries[1].value, value);
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_text(text in "[\\[\\]=:%()s#; \t\r\na-zA-Z0-9é\u{1c}\u{feff}]{0,200}") {
            let _ = parse_str(&text, "t.cfg").map(|raw| resolve(&raw, &Overrides::default()));
        }

        #[test]
        fn never_panics_on_any_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = parse_bytes(&bytes, "t.cfg");
        }
    }

    #[test]
    fn bad_endpoint_timeout() {
        let cases = [
            ("soon", "t.cfg:2: site 'default', option 'endpoint_timeout': 'soon' is not a positive number of seconds"),
            ("0", "t.cfg:2: site 'default', option 'endpoint_timeout': '0' is not a positive number of seconds"),
            ("-1", "t.cfg:2: site 'default', option 'endpoint_timeout': '-1' is not a positive number of seconds"),
            ("inf", "t.cfg:2: site 'default', option 'endpoint_timeout': 'inf' is not a positive number of seconds"),
        ];
        for (value, message) in cases {
            let text = format!("[default]\nendpoint_timeout = {value}\n");
            let err = resolve_err(&text, &Overrides::default());
            assert!(
                matches!(&err, ConfigError::BadValue { site, key, .. }
                    if site == "default" && key == "endpoint_timeout"),
                "{value}"
            );
            assert_eq!(err.to_string(), message);
        }
        // A bad value inherited from [default] is reported for each site at its own line.
        let err = resolve_err(
            "[default]\nselected_section = a\n[a]\nendpoint_timeout = x\n",
            &Overrides::default(),
        );
        assert_eq!(
            err.to_string(),
            "t.cfg:4: site 'a', option 'endpoint_timeout': 'x' is not a positive number of seconds"
        );
        let overrides = Overrides {
            args: map(&[("endpoint_timeout", "never")]),
            ..Overrides::default()
        };
        assert_eq!(
            resolve_err("[default]\n", &overrides).to_string(),
            "constructor argument: site 'default', option 'endpoint_timeout': 'never' is not a \
             positive number of seconds"
        );
        let site = SiteSettings {
            name: "s".to_owned(),
            values: map(&[("endpoint_timeout", "2.5")]),
        };
        assert_eq!(site.endpoint_timeout().unwrap(), Some(2.5));
    }

    // ---- resolve ------------------------------------------------------------------------------

    const SITES: &str = "\
[default]
selected_section = b
endpoint_timeout = 5
username = file-default
password = file-default
pdisk_endpoint = pdisk.default

[a]
name = 'Site A'
username = file-a

[b]
name = \"Site B\"
country = \"FR\"
username = file-b
endpoint = b.example.org

[instance_types]
M1.Small = (2, 1024, 0)
my.type = 4, 2048, 2048
";

    #[test]
    fn merge_order_for_default_and_other_sites() {
        let overrides = Overrides {
            default_site: None,
            env: map(&[
                ("username", "env"),
                ("password", "env"),
                ("endpoint", "env.example"),
            ]),
            args: map(&[("password", "arg")]),
        };
        let settings = resolve(&parse(SITES), &overrides).unwrap();
        assert_eq!(settings.default_site, "b");
        let names: Vec<&str> = settings.sites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);

        let a = settings.site("a").unwrap();
        assert_eq!(
            a.values,
            map(&[
                ("selected_section", "b"),
                ("endpoint_timeout", "5"),
                ("username", "file-a"),
                ("password", "file-default"),
                ("pdisk_endpoint", "pdisk.default"),
                ("name", "'Site A'"),
            ])
        );
        let b = settings.site("b").unwrap();
        assert_eq!(
            b.values,
            map(&[
                ("selected_section", "b"),
                ("endpoint_timeout", "5"),
                ("username", "env"),
                ("password", "arg"),
                ("pdisk_endpoint", "pdisk.default"),
                ("name", "\"Site B\""),
                ("country", "\"FR\""),
                ("endpoint", "env.example"),
            ])
        );
    }

    #[test]
    fn default_site_choice_order() {
        let raw = parse(SITES);
        let chosen = |overrides: Overrides| resolve(&raw, &overrides).unwrap().default_site;
        assert_eq!(chosen(Overrides::default()), "b");
        let env = map(&[("selected_section", "a")]);
        assert_eq!(
            chosen(Overrides {
                env: env.clone(),
                ..Overrides::default()
            }),
            "a"
        );
        assert_eq!(
            chosen(Overrides {
                default_site: Some("default".to_owned()),
                env,
                ..Overrides::default()
            }),
            "default"
        );
        // Neither argument, environment nor selected_section: the [default] section itself.
        let settings = resolve(
            &parse("[default]\nendpoint = d\n[x]\n"),
            &Overrides::default(),
        );
        assert_eq!(settings.unwrap().default_site, "default");
    }

    #[test]
    fn default_section_is_a_site_only_when_chosen() {
        let raw = parse(SITES);
        let overrides = Overrides {
            default_site: Some("default".to_owned()),
            args: map(&[("endpoint", "arg.example")]),
            ..Overrides::default()
        };
        let settings = resolve(&raw, &overrides).unwrap();
        let names: Vec<&str> = settings.sites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["default", "a", "b"]);
        let default = settings.site("default").unwrap();
        assert_eq!(default.get("endpoint"), Some("arg.example"));
        assert_eq!(default.get("username"), Some("file-default"));
        assert_eq!(default.display_name(), "default");
        assert_eq!(default.country(), "unknown");
        // Env and args did not reach the other sites.
        assert_eq!(
            settings.site("b").unwrap().get("endpoint"),
            Some("b.example.org")
        );
        assert_eq!(settings.site("a").unwrap().get("endpoint"), None);
    }

    #[test]
    fn display_values_strip_quotes() {
        let settings = resolve(&parse(SITES), &Overrides::default()).unwrap();
        let a = settings.site("a").unwrap();
        assert_eq!(a.display_name(), "Site A");
        assert_eq!(a.country(), "unknown");
        let b = settings.site("b").unwrap();
        assert_eq!(b.display_name(), "Site B");
        assert_eq!(b.country(), "FR");
        let site = |name: &str| SiteSettings {
            name: "s".to_owned(),
            values: map(&[("name", name)]),
        };
        assert_eq!(site("plain").display_name(), "plain");
        assert_eq!(site("\"half").display_name(), "\"half");
        assert_eq!(site("\"\"").display_name(), "s");
        assert_eq!(site("").display_name(), "s");
        assert_eq!(site("").get("name"), None);
    }

    #[test]
    fn instance_types_override_by_name() {
        let settings = resolve(&parse(SITES), &Overrides::default()).unwrap();
        let mut expected = default_instance_types();
        expected[1] = InstanceType {
            name: "m1.small".to_owned(),
            cpu: 2,
            ram_mib: 1024,
            swap_mib: 0,
        };
        expected.push(InstanceType {
            name: "my.type".to_owned(),
            cpu: 4,
            ram_mib: 2048,
            swap_mib: 2048,
        });
        assert_eq!(settings.instance_types, expected);
    }

    #[test]
    fn environment_mapping() {
        let vars = [
            ("STRATUSLAB_ENDPOINT", "e"),
            ("STRATUSLAB_USERNAME", "u"),
            ("STRATUSLAB_PASSWORD", "p"),
            ("STRATUSLAB_PDISK_ENDPOINT", "pe"),
            ("STRATUSLAB_PDISK_USERNAME", "pu"),
            ("STRATUSLAB_PDISK_PASSWORD", "pp"),
            ("STRATUSLAB_MARKETPLACE_ENDPOINT", "me"),
            ("STRATUSLAB_PEM_CERTIFICATE", "cert"),
            ("STRATUSLAB_PEM_KEY", "key"),
            ("STRATUSLAB_KEY", "id.pub"),
            ("STRATUSLAB_USER_CONFIG_SECTION", "sec"),
            ("STRATUSLAB_UNKNOWN", "x"),
            ("HOME", "/root"),
            ("stratuslab_endpoint", "lower-case names are not ours"),
        ];
        let env = env_overrides(vars.map(|(k, v)| (k.to_owned(), v.to_owned())));
        assert_eq!(
            env,
            map(&[
                ("endpoint", "e"),
                ("username", "u"),
                ("password", "p"),
                ("pdisk_endpoint", "pe"),
                ("pdisk_username", "pu"),
                ("pdisk_password", "pp"),
                ("marketplace_endpoint", "me"),
                ("pem_certificate", "cert"),
                ("pem_key", "key"),
                ("user_public_key_file", "id.pub"),
                ("selected_section", "sec"),
            ])
        );
        let empty = env_overrides([("STRATUSLAB_ENDPOINT".to_owned(), String::new())]);
        assert!(empty.is_empty());
    }

    #[test]
    fn settings_without_a_file() {
        let overrides = Overrides {
            env: map(&[
                ("endpoint", "env.example"),
                ("username", "env"),
                ("selected_section", "x"),
            ]),
            args: map(&[("username", "arg"), ("password", "secret")]),
            ..Overrides::default()
        };
        let settings = resolve_without_file(&overrides).unwrap();
        assert_eq!(settings.origin, None);
        assert_eq!(settings.default_site, "default");
        assert_eq!(settings.instance_types, default_instance_types());
        assert_eq!(settings.sites.len(), 1);
        assert_eq!(
            settings.sites[0].values,
            map(&[
                ("endpoint", "env.example"),
                ("username", "arg"),
                ("password", "secret")
            ])
        );

        let err = resolve_without_file(&Overrides {
            args: map(&[("username", "u"), ("password", "p")]),
            ..Overrides::default()
        })
        .unwrap_err();
        assert!(matches!(&err, ConfigError::MissingEndpoint { site } if site == "default"));
        assert_eq!(
            err.to_string(),
            "site 'default' has no compute endpoint: set 'endpoint' in the configuration file, \
             STRATUSLAB_ENDPOINT, or the driver's host argument"
        );

        let err = resolve_without_file(&Overrides {
            default_site: Some("lal".to_owned()),
            args: map(&[("endpoint", "e")]),
            ..Overrides::default()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no configuration file: default site 'lal' (from the default site argument) is not \
             defined; known sites: default"
        );
    }

    #[test]
    fn default_path_is_under_home() {
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(home) => assert_eq!(
                default_path(),
                Some(PathBuf::from(home).join(".stratuslab/stratuslab-user.cfg"))
            ),
            None => assert_eq!(default_path(), None),
        }
    }
}
