//! The escaped scanner: tokens of a VM document as it lies, still escaped, in the body of an
//! XML-RPC `<string>`.

use std::borrow::Cow;

use super::records::VmXmlError;
use super::scan::{is_name_char, is_name_start, Ev, Tokens};

/// Reads a VM document where it lies in the body of an XML-RPC `<string>`, still escaped (`<`
/// written `&lt;`, `&` written `&amp;`, ...), without unescaping a copy first. It handles what
/// XML-RPC servers write: the five predefined entities for markup and text, raw `>` and quotes;
/// it refuses (an error) anything else — character references, carriage returns, comments,
/// processing instructions, attributes — and the caller then unescapes and reads the copy, so
/// its result is always that of [`parse_pool`] on the unescaped document.
pub(super) struct EscapedScanner<'a> {
    pub(super) s: &'a str,
    pub(super) pos: usize,
}

impl<'a> EscapedScanner<'a> {
    fn refuse(&self, what: &str) -> VmXmlError {
        VmXmlError::Xml {
            position: self.pos as u64,
            message: format!("escaped document: {what}"),
        }
    }

    /// Past a `>` or `&gt;` at `at`, if there is one.
    fn after_gt(&self, at: usize) -> Option<usize> {
        let b = self.s.as_bytes().get(at..)?;
        if b.starts_with(b">") {
            Some(at + 1)
        } else if b.starts_with(b"&gt;") {
            Some(at + 4)
        } else {
            None
        }
    }
}

impl<'a> Tokens<'a> for EscapedScanner<'a> {
    fn next(&mut self) -> Result<Ev<'a>, VmXmlError> {
        let b = self.s.as_bytes();
        let i = self.pos;
        let Some(rest) = b.get(i..).filter(|r| !r.is_empty()) else {
            return Ok(Ev::Eof);
        };
        if !rest.starts_with(b"&lt;") {
            // Text up to the next escaped `<` (any other `&` starts a reference in the text;
            // a raw `<` cannot be in a string body, and is refused).
            let mut at = i;
            let end = loop {
                match b.get(at..).and_then(|h| memchr::memchr2(b'&', b'<', h)) {
                    None => break b.len(),
                    Some(k) if b[at + k] == b'<' => return Err(self.refuse("a raw '<'")),
                    Some(k) if b[at + k..].starts_with(b"&lt;") => break at + k,
                    Some(k) => at += k + 1,
                }
            };
            self.pos = end;
            return Ok(Ev::Text(self.s.get(i..end).unwrap_or("")));
        }
        let m = i + 4;
        match b.get(m) {
            Some(b'/') => {
                let Some(k) = b.get(m + 1..).and_then(|h| memchr::memchr2(b'>', b'&', h)) else {
                    return Err(self.refuse("unterminated end tag"));
                };
                let j = m + 1 + k;
                let Some(after) = self.after_gt(j) else {
                    return Err(self.refuse("a reference in an end tag"));
                };
                self.pos = after;
                Ok(Ev::End(self.s.get(m + 1..j).unwrap_or("").trim_end()))
            }
            Some(b'!') if b[m..].starts_with(b"![CDATA[") => {
                let from = m + 8;
                let mut at = from;
                loop {
                    let Some(k) = b.get(at..).and_then(|h| memchr::memchr(b']', h)) else {
                        return Err(self.refuse("unterminated CDATA section"));
                    };
                    let j = at + k;
                    if b[j..].starts_with(b"]]") {
                        if let Some(after) = self.after_gt(j + 2) {
                            self.pos = after;
                            return Ok(Ev::CData(self.s.get(from..j).unwrap_or("")));
                        }
                    }
                    at = j + 1;
                }
            }
            Some(&c) if is_name_start(c) => {
                let mut end = m + 1;
                while end < b.len() && is_name_char(b[end]) {
                    end += 1;
                }
                let name = self.s.get(m..end).unwrap_or("");
                let mut k = end;
                while k < b.len() && b[k].is_ascii_whitespace() {
                    k += 1;
                }
                if let Some(after) = self.after_gt(k) {
                    self.pos = after;
                    return Ok(Ev::Start(name));
                }
                if b.get(k) == Some(&b'/') {
                    if let Some(after) = self.after_gt(k + 1) {
                        self.pos = after;
                        return Ok(Ev::Empty(name));
                    }
                }
                Err(self.refuse("attributes or a malformed start tag"))
            }
            _ => Err(self.refuse("markup other than elements and CDATA")),
        }
    }

    fn error(&self, message: impl Into<String>) -> VmXmlError {
        VmXmlError::Xml {
            position: self.pos as u64,
            message: message.into(),
        }
    }

    /// The escaping of the XML-RPC string undone: the five predefined entities only.
    fn chars(&self, raw: &'a str) -> Result<Cow<'a, str>, VmXmlError> {
        let bytes = raw.as_bytes();
        if memchr::memchr3(b'&', b'\r', b'<', bytes).is_none() {
            return Ok(Cow::Borrowed(raw));
        }
        let mut out = String::with_capacity(raw.len());
        let mut last = 0;
        for i in memchr::memchr3_iter(b'&', b'\r', b'<', bytes) {
            if i < last {
                continue;
            }
            let rest = &bytes[i..];
            let (c, len) = if rest.starts_with(b"&lt;") {
                ('<', 4)
            } else if rest.starts_with(b"&gt;") {
                ('>', 4)
            } else if rest.starts_with(b"&amp;") {
                ('&', 5)
            } else if rest.starts_with(b"&quot;") {
                ('"', 6)
            } else if rest.starts_with(b"&apos;") {
                ('\'', 6)
            } else {
                return Err(self.refuse("a character reference, a carriage return or a raw '<'"));
            };
            out.push_str(raw.get(last..i).unwrap_or(""));
            out.push(c);
            last = i + len;
        }
        out.push_str(raw.get(last..).unwrap_or(""));
        Ok(Cow::Owned(out))
    }
}
