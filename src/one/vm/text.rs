//! Text decoding of a VM document: entity and character references, line endings.

/// Resolves the entity and character references of `raw` into `out` (or only checks them).
pub(super) fn decode_text(raw: &str, mut out: Option<&mut String>) -> Result<(), String> {
    let mut rest = raw;
    while let Some(amp) = memchr::memchr(b'&', rest.as_bytes()) {
        if let Some(o) = out.as_deref_mut() {
            push_normalized(o, rest.get(..amp).unwrap_or(""));
        }
        let after = rest.get(amp + 1..).unwrap_or("");
        let semi = after
            .find(';')
            .filter(|&i| i <= 10)
            .ok_or("'&' without a reference")?;
        let name = after.get(..semi).unwrap_or("");
        let c = match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "apos" => '\'',
            "quot" => '"',
            _ => {
                let code = if let Some(hex) = name.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = name.strip_prefix('#') {
                    dec.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .filter(|&c| c >= ' ' || matches!(c, '\t' | '\n' | '\r'))
                    .ok_or_else(|| format!("unknown reference &{name};"))?
            }
        };
        if let Some(o) = out.as_deref_mut() {
            o.push(c);
        }
        rest = after.get(semi + 1..).unwrap_or("");
    }
    if let Some(o) = out {
        push_normalized(o, rest);
    }
    Ok(())
}

/// Appends `s` with XML's end-of-line handling (CR LF and lone CR become LF).
pub(super) fn push_normalized(out: &mut String, s: &str) {
    if memchr::memchr(b'\r', s.as_bytes()).is_some() {
        out.push_str(&s.replace("\r\n", "\n").replace('\r', "\n"));
    } else {
        out.push_str(s);
    }
}
