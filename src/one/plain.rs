//! Templates for plain OpenNebula sites (4.x to 7.x; 3.8 too): a VM booted from an image of the
//! image pool (`one.vm.allocate`), the overrides of a VM template (`one.template.instantiate`'s
//! extra template), a persistent DATABLOCK image (`one.image.allocate`) and a disk to hot-plug
//! (`one.vm.attach`).
//!
//! Values are written with the quoting of [`template::quoted`], whose refusals cover the
//! OpenNebula 7.4 parser as observed on the real daemon
//! (`tests/fixtures/opennebula-7.4.0/more/template-escaping.md`) and as its lexer
//! (`src/parsers/template_parser.l`, tag `release-7.4.0`) reads a quoted string: `\"` is the one
//! escape and every other backslash is kept, so a value with a backslash before a quote or at
//! its end cannot be written; `]]>` is refused by the daemon; `@^_^@` in CONTEXT is split into
//! new attributes by oned. On top of that, for 7.x:
//! - characters outside the Basic Multilingual Plane are refused (xmlrpc-c answers fault -503);
//! - in CONTEXT a `$` must start a variable name (`$$`, `$ `, `${`, a trailing `$` are refused by
//!   oned's variable parser; `$NAME` and the like are substituted on purpose);
//! - names (VM and image NAME, and the name parameter of `template.instantiate`) may not hold
//!   ``& | : ; / ' # { } < > \ " $``, TAB, LF, VT, FF or CR (`PoolObjectSQL::name_is_valid`),
//!   nor exceed 128 bytes.
//!
//! So a hostile name or context value is either stored verbatim or refused before anything is
//! sent; it can never add an attribute.

use std::fmt::Write as _;

use super::client::Version;
use super::template::{bad, check_key, quoted, TemplateError};

/// Characters `PoolObjectSQL::name_is_valid` refuses (OpenNebula 7.4).
const NAME_INVALID: &[char] = &[
    '&', '|', ':', ';', '/', '\'', '#', '{', '}', '<', '>', '\\', '"', '$', '\t', '\n', '\u{b}',
    '\u{c}', '\r',
];

/// What to boot on a plain site (the caller's values; the disk is an image of the pool).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlainVm {
    pub name: String,
    pub cpu: f64,
    pub vcpu: u32,
    pub memory_mib: u64,
    /// `DISK = [ IMAGE_ID = n ]` (none for a template's overrides).
    pub image_id: Option<i64>,
    /// `NIC = [ NETWORK_ID = n ]`.
    pub network_id: Option<i64>,
    /// Every CONTEXT entry (SSH_PUBLIC_KEY, NETWORK, the user's); empty = no CONTEXT.
    pub context: Vec<(String, String)>,
}

/// Checks a NAME (VM or image) for the daemon of `version`.
pub fn check_name(name: &str, version: Version) -> Result<(), TemplateError> {
    if name.is_empty() {
        return Err(bad("NAME", "must not be empty"));
    }
    if name.len() > 128 {
        return Err(bad("NAME", "longer than 128 bytes (oned's limit)"));
    }
    if version.major >= 5 {
        if let Some(c) = name.chars().find(|c| NAME_INVALID.contains(c)) {
            return Err(bad(
                "NAME",
                format!("contains {c:?}, which OpenNebula {version} refuses in names"),
            ));
        }
    } else if name.contains(['<', '&']) {
        return Err(bad(
            "NAME",
            "contains '<' or '&', which oned writes unescaped into its XML",
        ));
    }
    check_plane(name, "NAME", version)
}

fn check_plane(value: &str, field: &str, version: Version) -> Result<(), TemplateError> {
    if version.major >= 5 && value.chars().any(|c| u32::from(c) > 0xFFFF) {
        return Err(bad(
            field,
            "contains a character outside the Basic Multilingual Plane, which the daemon's XML-RPC layer refuses",
        ));
    }
    Ok(())
}

/// A CONTEXT value's `$` must start a variable (`$NAME`, `$NIC[IP]`, ...).
fn check_variables(value: &str, field: &str) -> Result<(), TemplateError> {
    let bytes = value.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'$' {
            let next = bytes.get(i + 1).copied();
            if !next.is_some_and(|n| n.is_ascii_alphanumeric() || n == b'_') {
                return Err(bad(
                    field,
                    "a '$' that does not start a variable name ($NAME, $NIC[IP], ...) is refused by oned",
                ));
            }
        }
    }
    Ok(())
}

fn value(
    out: &mut String,
    key: &str,
    v: &str,
    field: &str,
    version: Version,
) -> Result<(), TemplateError> {
    check_plane(v, field, version)?;
    out.push_str(key);
    out.push_str(" = ");
    quoted(out, v, field)
}

/// The template of `one.vm.allocate` (`with_name`) or the extra template of
/// `one.template.instantiate` (no NAME: it is a parameter there).
pub fn render_vm(
    spec: &PlainVm,
    version: Version,
    with_name: bool,
) -> Result<String, TemplateError> {
    if !spec.cpu.is_finite() || spec.cpu <= 0.0 {
        return Err(bad("CPU", "must be a positive number"));
    }
    if spec.vcpu == 0 {
        return Err(bad("VCPU", "must be at least 1"));
    }
    if spec.memory_mib == 0 {
        return Err(bad("MEMORY", "must be at least 1 MiB"));
    }
    let mut out = String::with_capacity(256);
    if with_name {
        check_name(&spec.name, version)?;
        value(&mut out, "NAME", &spec.name, "NAME", version)?;
        out.push('\n');
    }
    let _ = writeln!(out, "CPU = {}", spec.cpu);
    let _ = writeln!(out, "VCPU = {}", spec.vcpu);
    let _ = writeln!(out, "MEMORY = {}", spec.memory_mib);
    if let Some(id) = spec.image_id {
        let _ = writeln!(out, "DISK = [ IMAGE_ID = \"{id}\" ]");
    }
    if let Some(id) = spec.network_id {
        let _ = writeln!(out, "NIC = [ NETWORK_ID = \"{id}\" ]");
    }
    if !spec.context.is_empty() {
        let mut keys: Vec<String> = Vec::with_capacity(spec.context.len());
        out.push_str("CONTEXT = [\n");
        for (i, (key, v)) in spec.context.iter().enumerate() {
            check_key(key, "CONTEXT")?;
            let upper = key.to_ascii_uppercase();
            if keys.contains(&upper) {
                return Err(bad(format!("CONTEXT key '{key}'"), "given twice"));
            }
            let field = format!("CONTEXT {key}");
            check_variables(v, &field)?;
            if i > 0 {
                out.push_str(",\n");
            }
            value(&mut out, key, v, &field, version)?;
            keys.push(upper);
        }
        out.push_str(" ]\n");
    }
    Ok(out)
}

/// The template of a persistent, empty DATABLOCK image of `size_mib` (`one.image.allocate`).
pub fn render_datablock(
    name: &str,
    size_mib: u64,
    version: Version,
) -> Result<String, TemplateError> {
    if size_mib == 0 {
        return Err(bad("SIZE", "must be at least 1 MiB"));
    }
    let trimmed = name.trim();
    if trimmed != name {
        return Err(bad("NAME", "starts or ends with white space"));
    }
    check_name(name, version)?;
    let mut out = String::with_capacity(128);
    value(&mut out, "NAME", name, "NAME", version)?;
    let _ = write!(
        out,
        "\nTYPE = \"DATABLOCK\"\nPERSISTENT = \"YES\"\nSIZE = {size_mib}\n"
    );
    if version.major < 5 {
        // 3.8 and 4.x want the file system of an empty DATABLOCK.
        out.push_str("FSTYPE = \"raw\"\n");
    }
    Ok(out)
}

/// The template of `one.vm.attach`: the image, and the device target when one is asked for
/// (`vdb`, `/dev/sdc`: letters and digits only).
pub fn render_attach(image_id: i64, target: Option<&str>) -> Result<String, TemplateError> {
    let mut out = format!("DISK = [ IMAGE_ID = \"{image_id}\"");
    if let Some(t) = target {
        let t = t.strip_prefix("/dev/").unwrap_or(t);
        let ok = t.len() >= 3
            && t.len() <= 16
            && t.starts_with(|c: char| c.is_ascii_lowercase())
            && t.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !ok {
            return Err(bad(
                "DISK TARGET",
                format!("{t:?} is not a device name such as vdb or sdc"),
            ));
        }
        let _ = write!(out, ", TARGET = \"{t}\"");
    }
    out.push_str(" ]");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::one::template::{parse, TemplateValue};

    const V74: Version = Version {
        major: 7,
        minor: 4,
        patch: 0,
    };
    const V38: Version = Version {
        major: 3,
        minor: 8,
        patch: 5,
    };

    fn spec(name: &str, context: &[(&str, &str)]) -> PlainVm {
        PlainVm {
            name: name.into(),
            cpu: 1.0,
            vcpu: 1,
            memory_mib: 512,
            image_id: Some(0),
            network_id: Some(1),
            context: context
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn single<'a>(attrs: &'a [(String, TemplateValue)], key: &str) -> Vec<&'a TemplateValue> {
        attrs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect()
    }

    #[test]
    fn allocate_template_reads_back_as_written() {
        let text = render_vm(
            &spec(
                "web [1] (test), 50% = ok @ café ☃",
                &[
                    ("SSH_PUBLIC_KEY", "ssh-ed25519 AAAA user@host"),
                    ("NETWORK", "YES"),
                    ("MOTD", "x], INJ=[y \" \\n $NAME"),
                ],
            ),
            V74,
            true,
        )
        .unwrap();
        let attrs = parse(&text).unwrap();
        assert_eq!(
            single(&attrs, "NAME"),
            [&TemplateValue::Single(
                "web [1] (test), 50% = ok @ café ☃".into()
            )]
        );
        assert_eq!(single(&attrs, "DISK").len(), 1);
        assert_eq!(single(&attrs, "NIC").len(), 1);
        assert!(single(&attrs, "INJ").is_empty());
        let TemplateValue::Vector(context) = single(&attrs, "CONTEXT")[0] else {
            panic!("CONTEXT is not a vector")
        };
        assert_eq!(context.len(), 3);
        assert!(context.contains(&("MOTD".into(), "x], INJ=[y \" \\n $NAME".into())));
    }

    #[test]
    fn hostile_values_are_refused_before_sending() {
        for name in [
            "a\"b", "a\\b", "a$b", "a;b", "a/b", "a:b", "a'b", "a#b", "a{b", "a}b", "a<b", "a>b",
            "a&b", "a|b", "a\tb", "a\nb", "a\rb", "😀", "",
        ] {
            assert!(
                render_vm(&spec(name, &[]), V74, true).is_err(),
                "{name:?} accepted"
            );
        }
        let long = "x".repeat(129);
        assert!(render_vm(&spec(&long, &[]), V74, true).is_err());
        // 3.8's rules are those of its own parser: quotes are escaped, '<' and '&' refused.
        assert!(render_vm(&spec("a\"b", &[]), V38, true).is_ok());
        assert!(render_vm(&spec("a<b", &[]), V38, true).is_err());
        for value in [
            "a@^_^@INJ=b",
            "x]]>y",
            "end\\",
            "a\\\"b",
            "cost $$",
            "lone $ sign",
            "trailing $",
            "${NAME}",
            "😀",
            "",
            "bell\u{7}",
        ] {
            assert!(
                render_vm(&spec("ok", &[("V", value)]), V74, true).is_err(),
                "{value:?} accepted"
            );
        }
        assert!(render_vm(&spec("ok", &[("bad key", "v")]), V74, true).is_err());
        assert!(render_vm(&spec("ok", &[("A", "1"), ("a", "2")]), V74, true).is_err());
    }

    #[test]
    fn instantiate_overrides_have_no_name_and_no_disk() {
        let mut s = spec("ignored", &[("NETWORK", "YES")]);
        s.image_id = None;
        let text = render_vm(&s, V74, false).unwrap();
        let attrs = parse(&text).unwrap();
        assert!(single(&attrs, "NAME").is_empty());
        assert!(single(&attrs, "DISK").is_empty());
        assert_eq!(single(&attrs, "NIC").len(), 1);
    }

    #[test]
    fn datablock_and_attach_templates() {
        let text = render_datablock("data 1", 2048, V74).unwrap();
        let attrs = parse(&text).unwrap();
        assert_eq!(
            single(&attrs, "TYPE"),
            [&TemplateValue::Single("DATABLOCK".into())]
        );
        assert_eq!(
            single(&attrs, "PERSISTENT"),
            [&TemplateValue::Single("YES".into())]
        );
        assert_eq!(
            single(&attrs, "SIZE"),
            [&TemplateValue::Single("2048".into())]
        );
        assert!(single(&attrs, "FSTYPE").is_empty());
        assert!(render_datablock("data 1", 2048, V38)
            .unwrap()
            .contains("FSTYPE"));
        assert!(render_datablock("a/b", 1, V74).is_err());
        assert!(render_datablock(" a", 1, V74).is_err());
        assert!(render_datablock("a", 0, V74).is_err());
        assert_eq!(
            render_attach(3, Some("/dev/vdc")).unwrap(),
            "DISK = [ IMAGE_ID = \"3\", TARGET = \"vdc\" ]"
        );
        assert_eq!(
            render_attach(3, None).unwrap(),
            "DISK = [ IMAGE_ID = \"3\" ]"
        );
        assert!(render_attach(3, Some("vdb\", X=\"1")).is_err());
        assert!(render_attach(3, Some("")).is_err());
    }
}
