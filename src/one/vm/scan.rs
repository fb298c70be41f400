//! The plain scanner: tokens of a VM document as it is (XML names, elements, text, CDATA).

use std::borrow::Cow;

use super::records::VmXmlError;

/// What the scanner found.
pub(super) enum Ev<'a> {
    Start(&'a str),
    Empty(&'a str),
    End(&'a str),
    /// Raw text (entities not yet resolved).
    Text(&'a str),
    CData(&'a str),
    Eof,
}

/// A minimal XML scanner for oned's documents: elements (attributes skipped), text, CDATA,
/// comments and processing instructions; DOCTYPE is refused. Well-formedness of what it reads
/// is checked (names, quotes, terminators, end tags via the caller); positions are bytes.
pub(super) struct Scanner<'a> {
    s: &'a str,
    pos: usize,
}

/// Byte classes for XML names: 1 = may start a name, 2 = may continue one (non-ASCII bytes
/// are accepted as both; the document is valid UTF-8).
pub(super) const NAME_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        if b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80 {
            t[i] = 3;
        } else if b.is_ascii_digit() || b == b'.' || b == b'-' {
            t[i] = 2;
        }
        i += 1;
    }
    t
};

pub(super) fn is_name_start(b: u8) -> bool {
    NAME_CLASS[b as usize] & 1 != 0
}

pub(super) fn is_name_char(b: u8) -> bool {
    NAME_CLASS[b as usize] != 0
}

impl<'a> Scanner<'a> {
    pub(super) fn new(s: &'a str) -> Self {
        Scanner { s, pos: 0 }
    }

    fn error(&self, message: impl Into<String>) -> VmXmlError {
        VmXmlError::Xml {
            position: self.pos as u64,
            message: message.into(),
        }
    }

    /// `s[from..to]`; the callers' indices sit next to ASCII delimiters, so always on char
    /// boundaries (and out-of-range gives "", never a panic).
    fn slice(&self, from: usize, to: usize) -> &'a str {
        self.s.get(from..to).unwrap_or("")
    }

    /// Moves past `terminator` searched from absolute `from`; returns the text before it.
    /// (memchr on its first byte: the sections are mostly short, a substring searcher's set-up
    /// would cost more than the search.)
    fn until(&mut self, from: usize, terminator: &str, what: &str) -> Result<&'a str, VmXmlError> {
        let b = self.s.as_bytes();
        let t = terminator.as_bytes();
        let mut at = from;
        loop {
            let found = t.first().and_then(|&c| memchr::memchr(c, b.get(at..)?));
            let Some(k) = found else {
                return Err(self.error(format!("unterminated {what}")));
            };
            let start = at + k;
            if b.get(start..).is_some_and(|h| h.starts_with(t)) {
                self.pos = start + t.len();
                return Ok(self.slice(from, start));
            }
            at = start + 1;
        }
    }

    /// End (absolute index) of the name starting at absolute `at`.
    fn name_end(&self, at: usize) -> Result<usize, VmXmlError> {
        let b = self.s.as_bytes();
        if !b.get(at).is_some_and(|&c| is_name_start(c)) {
            return Err(self.error("invalid element name"));
        }
        let mut j = at + 1;
        while j < b.len() && is_name_char(b[j]) {
            j += 1;
        }
        Ok(j)
    }

    fn skip_ws(&self, mut j: usize) -> usize {
        let b = self.s.as_bytes();
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        j
    }

    fn next(&mut self) -> Result<Ev<'a>, VmXmlError> {
        let b = self.s.as_bytes();
        loop {
            let i = self.pos;
            let Some(&first) = b.get(i) else {
                return Ok(Ev::Eof);
            };
            if first != b'<' {
                let end = b
                    .get(i..)
                    .and_then(|h| memchr::memchr(b'<', h))
                    .map_or(b.len(), |k| i + k);
                self.pos = end;
                return Ok(Ev::Text(self.slice(i, end)));
            }
            match b.get(i + 1) {
                Some(b'/') => {
                    // The caller compares the name with the open element's (checked when it
                    // was opened), so the end tag needs no character checks of its own.
                    let Some(close) = b.get(i + 2..).and_then(|h| memchr::memchr(b'>', h)) else {
                        return Err(self.error("unterminated end tag"));
                    };
                    self.pos = i + 2 + close + 1;
                    return Ok(Ev::End(self.slice(i + 2, i + 2 + close).trim_end()));
                }
                Some(b'?') => {
                    self.until(i + 2, "?>", "processing instruction")?;
                }
                Some(b'!') => {
                    let rest = b.get(i..).unwrap_or_default();
                    if rest.starts_with(b"<![CDATA[") {
                        return Ok(Ev::CData(self.until(i + 9, "]]>", "CDATA section")?));
                    } else if rest.starts_with(b"<!--") {
                        self.until(i + 4, "-->", "comment")?;
                    } else {
                        return Err(self.error("DOCTYPE and other declarations are not accepted"));
                    }
                }
                _ => {
                    let end = self.name_end(i + 1)?;
                    let name = self.slice(i + 1, end);
                    let mut j = end;
                    // attributes: (ws name ws = ws quoted)*, then > or />
                    loop {
                        let k = self.skip_ws(j);
                        match b.get(k) {
                            Some(b'>') => {
                                self.pos = k + 1;
                                return Ok(Ev::Start(name));
                            }
                            Some(b'/') if b.get(k + 1) == Some(&b'>') => {
                                self.pos = k + 2;
                                return Ok(Ev::Empty(name));
                            }
                            Some(&c) if k > j && is_name_start(c) => {
                                let eq = self.skip_ws(self.name_end(k)?);
                                if b.get(eq) != Some(&b'=') {
                                    return Err(
                                        self.error(format!("attribute without value in <{name}>"))
                                    );
                                }
                                let q = self.skip_ws(eq + 1);
                                let quote = match b.get(q) {
                                    Some(&c @ (b'"' | b'\'')) => c,
                                    _ => {
                                        return Err(
                                            self.error(format!("unquoted attribute in <{name}>"))
                                        )
                                    }
                                };
                                let close =
                                    b.get(q + 1..).and_then(|h| memchr::memchr2(quote, b'<', h));
                                match close.map(|c| q + 1 + c) {
                                    Some(c) if b.get(c) == Some(&quote) => j = c + 1,
                                    _ => {
                                        return Err(
                                            self.error(format!("malformed attribute in <{name}>"))
                                        )
                                    }
                                }
                            }
                            _ => return Err(self.error(format!("malformed start tag <{name}"))),
                        }
                    }
                }
            }
        }
    }
}

/// A source of tokens for the reader: the document itself ([`Scanner`]) or the document as it
/// lies escaped in an XML-RPC string ([`EscapedScanner`]).
pub(super) trait Tokens<'a> {
    fn next(&mut self) -> Result<Ev<'a>, VmXmlError>;
    fn error(&self, message: impl Into<String>) -> VmXmlError;
    /// The document's characters of a `Text` or `CData` token.
    fn chars(&self, raw: &'a str) -> Result<Cow<'a, str>, VmXmlError>;
}

impl<'a> Tokens<'a> for Scanner<'a> {
    fn next(&mut self) -> Result<Ev<'a>, VmXmlError> {
        Scanner::next(self)
    }
    fn error(&self, message: impl Into<String>) -> VmXmlError {
        Scanner::error(self, message)
    }
    fn chars(&self, raw: &'a str) -> Result<Cow<'a, str>, VmXmlError> {
        Ok(Cow::Borrowed(raw))
    }
}
