//! The XML-RPC wire codec on quick-xml: method calls and responses, both directions.
//!
//! The decoder is a single streaming pass over a byte slice. A `<string>` body is taken as one raw
//! slice and unescaped once (a 37 MB pool document inside one string is the common big case). The
//! encoder writes the layout `xmlrpc-c` (OpenNebula's server library) uses: `<i4>` integers, one
//! value per line inside arrays.

use std::borrow::Cow;
use std::fmt::Write as _;

use base64::Engine as _;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::{Value, XmlRpcError};

/// Deepest nesting of arrays/structs accepted (a guard against hostile input).
const MAX_DEPTH: usize = 64;

/// Encodes a `methodCall`.
pub fn encode_call(method: &str, params: &[Value]) -> String {
    let mut out = String::with_capacity(128 + params.len() * 48);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodCall>\n<methodName>");
    escape_into(method, &mut out);
    out.push_str("</methodName>\n<params>\n");
    for p in params {
        out.push_str("<param>");
        encode_value(p, &mut out);
        out.push_str("</param>\n");
    }
    out.push_str("</params>\n</methodCall>\n");
    out
}

/// Encodes a successful `methodResponse` with one value.
pub fn encode_response(value: &Value) -> String {
    let mut out = String::with_capacity(128 + estimate(value));
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodResponse>\n<params>\n<param>");
    encode_value(value, &mut out);
    out.push_str("</param>\n</params>\n</methodResponse>\n");
    out
}

/// Encodes a fault `methodResponse`.
pub fn encode_fault(code: i32, message: &str) -> String {
    let mut out = String::with_capacity(256 + message.len());
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodResponse>\n<fault>\n");
    encode_value(
        &Value::Struct(vec![
            ("faultCode".to_owned(), Value::Int(i64::from(code))),
            ("faultString".to_owned(), Value::String(message.to_owned())),
        ]),
        &mut out,
    );
    out.push_str("\n</fault>\n</methodResponse>\n");
    out
}

fn estimate(value: &Value) -> usize {
    match value {
        Value::String(s) => s.len() + s.len() / 8 + 32,
        Value::Array(items) => items.iter().map(estimate).sum::<usize>() + 32,
        Value::Struct(members) => members
            .iter()
            .map(|(n, v)| n.len() + estimate(v) + 40)
            .sum(),
        _ => 40,
    }
}

fn encode_value(value: &Value, out: &mut String) {
    out.push_str("<value>");
    match value {
        Value::Int(i) => {
            let tag = if i32::try_from(*i).is_ok() {
                "i4"
            } else {
                "i8"
            };
            let _ = write!(out, "<{tag}>{i}</{tag}>");
        }
        Value::Bool(b) => {
            out.push_str(if *b {
                "<boolean>1</boolean>"
            } else {
                "<boolean>0</boolean>"
            });
        }
        Value::String(s) => {
            out.push_str("<string>");
            escape_into(s, out);
            out.push_str("</string>");
        }
        Value::Double(d) => {
            let _ = write!(out, "<double>{d:?}</double>");
        }
        Value::DateTime(s) => {
            out.push_str("<dateTime.iso8601>");
            escape_into(s, out);
            out.push_str("</dateTime.iso8601>");
        }
        Value::Base64(bytes) => {
            out.push_str("<base64>");
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(bytes));
            out.push_str("</base64>");
        }
        Value::Array(items) => {
            out.push_str("<array><data>\n");
            for item in items {
                encode_value(item, out);
                out.push('\n');
            }
            out.push_str("</data></array>");
        }
        Value::Struct(members) => {
            out.push_str("<struct>\n");
            for (name, v) in members {
                out.push_str("<member><name>");
                escape_into(name, out);
                out.push_str("</name>");
                encode_value(v, out);
                out.push_str("</member>\n");
            }
            out.push_str("</struct>");
        }
        Value::Nil => out.push_str("<nil/>"),
    }
    out.push_str("</value>");
}

/// Escapes text for element content. `\r` is written as a character reference so that it survives
/// XML end-of-line normalisation.
pub fn escape_into(text: &str, out: &mut String) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let rep = match b {
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'&' => "&amp;",
            b'\r' => "&#13;",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        out.push_str(rep);
        start = i + 1;
    }
    out.push_str(&text[start..]);
}

/// Decodes a `methodCall` into its method name and parameters.
pub fn decode_call(bytes: &[u8]) -> Result<(String, Vec<Value>), XmlRpcError> {
    let mut d = Decoder::new(bytes)?;
    d.expect_start("methodCall")?;
    d.expect_start("methodName")?;
    let name = d.text_until_end("methodName")?;
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Err(malformed("empty methodName"));
    }
    let mut params = Vec::new();
    match d.next_significant()? {
        Tok::Start(tag) if tag == "params" => {
            loop {
                match d.next_significant()? {
                    Tok::Start(tag) if tag == "param" => {
                        d.expect_start("value")?;
                        params.push(d.value_body(0)?);
                        d.expect_end("param")?;
                    }
                    Tok::Empty(tag) if tag == "param" => {
                        return Err(malformed("empty <param>"));
                    }
                    Tok::End(tag) if tag == "params" => break,
                    other => return Err(unexpected("<param> or </params>", &other)),
                }
            }
            d.expect_end("methodCall")?;
        }
        Tok::Empty(tag) if tag == "params" => d.expect_end("methodCall")?,
        Tok::End(tag) if tag == "methodCall" => {}
        other => return Err(unexpected("<params>", &other)),
    }
    d.expect_eof()?;
    Ok((name, params))
}

/// Decodes a `methodResponse`; a fault becomes `Err(XmlRpcError::Fault)`.
pub fn decode_response(bytes: &[u8]) -> Result<Value, XmlRpcError> {
    decode_response_with(bytes, |d| d.value_body(0))
}

/// One item of an array response read by [`decode_response_raw`].
#[derive(Debug, Clone, PartialEq)]
pub enum RawItem<'a> {
    /// A `<string>` body as written (references unresolved; [`unescape`] resolves them).
    Escaped(&'a str),
    /// Any other item, decoded.
    Value(Value),
}

impl RawItem<'_> {
    /// The item decoded as [`decode_response`] would have.
    pub fn into_value(self) -> Result<Value, XmlRpcError> {
        match self {
            RawItem::Escaped(raw) => unescape(raw).map(Value::String),
            RawItem::Value(v) => Ok(v),
        }
    }
}

/// A response read by [`decode_response_raw`].
#[derive(Debug, Clone, PartialEq)]
pub enum RawResponse<'a> {
    /// The value is an array: its items.
    Array(Vec<RawItem<'a>>),
    /// Any other value, decoded.
    Other(Value),
}

/// Decodes a `methodResponse` as [`decode_response`] does, except that the `<string>` items of
/// an array value are left as written, borrowed from `bytes`: a reader of a large document (a VM
/// pool, tens of MB) can read it where it lies instead of unescaping a copy first.
pub fn decode_response_raw(bytes: &[u8]) -> Result<RawResponse<'_>, XmlRpcError> {
    decode_response_with(bytes, |d| d.raw_value())
}

/// Resolves the references and line ends of a `<string>` body as written.
pub fn unescape(raw: &str) -> Result<String, XmlRpcError> {
    unescape_string(raw)
}

fn decode_response_with<'a, T>(
    bytes: &'a [u8],
    value: impl FnOnce(&mut Decoder<'a>) -> Result<T, XmlRpcError>,
) -> Result<T, XmlRpcError> {
    let mut d = Decoder::new(bytes)?;
    d.expect_start("methodResponse")?;
    let result = match d.next_significant()? {
        Tok::Start(tag) if tag == "params" => {
            d.expect_start("param")?;
            d.expect_start("value")?;
            let v = value(&mut d)?;
            d.expect_end("param")?;
            d.expect_end("params")?;
            Ok(v)
        }
        Tok::Start(tag) if tag == "fault" => {
            d.expect_start("value")?;
            let v = d.value_body(0)?;
            d.expect_end("fault")?;
            let code = v.member("faultCode").and_then(Value::as_i64);
            let message = v.member("faultString").and_then(Value::as_str);
            match (code, message) {
                (Some(code), Some(message)) => Err(XmlRpcError::Fault {
                    code,
                    message: message.to_owned(),
                }),
                _ => return Err(malformed("fault without faultCode/faultString")),
            }
        }
        other => return Err(unexpected("<params> or <fault>", &other)),
    };
    d.expect_end("methodResponse")?;
    d.expect_eof()?;
    result
}

fn malformed(detail: impl Into<String>) -> XmlRpcError {
    XmlRpcError::Malformed {
        detail: detail.into(),
    }
}

fn unexpected(wanted: &str, got: &Tok<'_>) -> XmlRpcError {
    malformed(format!("expected {wanted}, found {}", got.describe()))
}

/// A significant token (whitespace-only text between elements is skipped by the decoder).
enum Tok<'a> {
    Start(String),
    Empty(String),
    End(String),
    Text(Cow<'a, str>),
    /// An entity or character reference, already resolved.
    Resolved(String),
    Eof,
}

impl Tok<'_> {
    fn describe(&self) -> String {
        match self {
            Tok::Start(t) => format!("<{}>", t),
            Tok::Empty(t) => format!("<{}/>", t),
            Tok::End(t) => format!("</{}>", t),
            Tok::Text(t) => {
                let t: String = t.chars().take(40).collect();
                format!("text '{t}'")
            }
            Tok::Resolved(t) => format!("text '{t}'"),
            Tok::Eof => "end of document".to_owned(),
        }
    }
}

struct Decoder<'a> {
    reader: Reader<&'a [u8]>,
    /// The whole document (validated UTF-8).
    doc: &'a str,
    /// Bytes consumed behind the reader's back (string bodies), for error positions.
    skipped: u64,
}

fn local(start: &BytesStart<'_>) -> String {
    start.local_name().as_ref().to_owned()
}

impl<'a> Decoder<'a> {
    fn new(bytes: &'a [u8]) -> Result<Self, XmlRpcError> {
        let Ok(doc) = std::str::from_utf8(bytes) else {
            return Err(malformed("the document is not valid UTF-8"));
        };
        let mut reader = Reader::from_reader(bytes);
        let config = reader.config_mut();
        config.trim_text(false);
        config.expand_empty_elements = false;
        config.check_end_names = true;
        Ok(Decoder {
            reader,
            doc,
            skipped: 0,
        })
    }

    fn err(&self, e: quick_xml::Error) -> XmlRpcError {
        malformed(format!(
            "XML error at byte {}: {e}",
            self.reader.buffer_position() + self.skipped
        ))
    }

    /// Next token, raw (text not trimmed, refs resolved into text).
    fn next_raw(&mut self) -> Result<Tok<'a>, XmlRpcError> {
        loop {
            let event = self.reader.read_event().map_err(|e| self.err(e))?;
            return Ok(match event {
                Event::Start(s) => Tok::Start(local(&s)),
                Event::Empty(s) => Tok::Empty(local(&s)),
                Event::End(e) => Tok::End(e.local_name().as_ref().to_owned()),
                Event::Text(t) => Tok::Text(t.into_inner()),
                Event::CData(c) => Tok::Text(Cow::Owned(c.into_inner().into_owned())),
                Event::GeneralRef(r) => Tok::Resolved(resolve_ref(&r)?),
                Event::Eof => Tok::Eof,
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => continue,
            });
        }
    }

    /// Next token that is not whitespace-only text.
    fn next_significant(&mut self) -> Result<Tok<'a>, XmlRpcError> {
        loop {
            match self.next_raw()? {
                Tok::Text(t) if t.trim().is_empty() => continue,
                tok => return Ok(tok),
            }
        }
    }

    fn expect_start(&mut self, name: &str) -> Result<(), XmlRpcError> {
        match self.next_significant()? {
            Tok::Start(t) if t == name => Ok(()),
            other => Err(unexpected(&format!("<{}>", name), &other)),
        }
    }

    fn expect_end(&mut self, name: &str) -> Result<(), XmlRpcError> {
        match self.next_significant()? {
            Tok::End(t) if t == name => Ok(()),
            other => Err(unexpected(&format!("</{}>", name), &other)),
        }
    }

    fn expect_eof(&mut self) -> Result<(), XmlRpcError> {
        match self.next_significant()? {
            Tok::Eof => Ok(()),
            other => Err(unexpected("end of document", &other)),
        }
    }

    /// Text content up to `</name>` (refs and CDATA resolved).
    fn text_until_end(&mut self, name: &str) -> Result<String, XmlRpcError> {
        let mut text = String::new();
        loop {
            match self.next_raw()? {
                Tok::Text(t) => text.push_str(&unescape_text(&t)?),
                Tok::Resolved(t) => text.push_str(&t),
                Tok::End(t) if t == name => return Ok(text),
                other => return Err(unexpected(&format!("text or </{}>", name), &other)),
            }
        }
    }

    /// The body of a `<value>` whose start tag was consumed; consumes `</value>`.
    fn value_body(&mut self, depth: usize) -> Result<Value, XmlRpcError> {
        let first = self.next_raw()?;
        self.value_from(first, String::new(), depth)
    }

    /// [`value_body`](Self::value_body) with its first token read and the untyped text before
    /// it already collected.
    fn value_from(
        &mut self,
        first: Tok<'a>,
        mut untyped: String,
        depth: usize,
    ) -> Result<Value, XmlRpcError> {
        if depth > MAX_DEPTH {
            return Err(malformed(format!(
                "values nested deeper than {MAX_DEPTH} levels"
            )));
        }
        let mut tok = first;
        loop {
            match tok {
                Tok::Text(t) => untyped.push_str(&unescape_text(&t)?),
                Tok::Resolved(t) => untyped.push_str(&t),
                Tok::End(t) if t == "value" => return Ok(Value::String(untyped)),
                Tok::Start(tag) => {
                    if !untyped.trim().is_empty() {
                        return Err(malformed("text mixed with a typed value"));
                    }
                    let v = self.typed(&tag, depth)?;
                    self.expect_end("value")?;
                    return Ok(v);
                }
                Tok::Empty(tag) => {
                    let v = match tag.as_str() {
                        "nil" => Value::Nil,
                        "string" => Value::String(String::new()),
                        "array" => Value::Array(Vec::new()),
                        "struct" => Value::Struct(Vec::new()),
                        "base64" => Value::Base64(Vec::new()),
                        other => {
                            return Err(malformed(format!("empty <{}/> is not a value", other)))
                        }
                    };
                    self.expect_end("value")?;
                    return Ok(v);
                }
                other => return Err(unexpected("a value", &other)),
            }
            tok = self.next_raw()?;
        }
    }

    /// The first token inside a `<value>` that is not whitespace, and that whitespace.
    fn value_start(&mut self) -> Result<(Tok<'a>, String), XmlRpcError> {
        let mut space = String::new();
        loop {
            match self.next_raw()? {
                Tok::Text(t) if t.trim().is_empty() => space.push_str(&t),
                tok => return Ok((tok, space)),
            }
        }
    }

    /// The body of the response's `<value>` for [`decode_response_raw`]; consumes `</value>`.
    fn raw_value(&mut self) -> Result<RawResponse<'a>, XmlRpcError> {
        let (first, space) = self.value_start()?;
        if !matches!(&first, Tok::Start(t) if t == "array") {
            return self.value_from(first, space, 0).map(RawResponse::Other);
        }
        let mut items = Vec::new();
        match self.next_significant()? {
            Tok::Start(t) if t == "data" => loop {
                match self.next_significant()? {
                    Tok::Start(t) if t == "value" => {
                        let (first, space) = self.value_start()?;
                        if matches!(&first, Tok::Start(t) if t == "string") {
                            items.push(RawItem::Escaped(self.raw_string()?));
                            self.expect_end("value")?;
                        } else {
                            items.push(RawItem::Value(self.value_from(first, space, 1)?));
                        }
                    }
                    Tok::Empty(t) if t == "value" => {
                        items.push(RawItem::Value(Value::String(String::new())))
                    }
                    Tok::End(t) if t == "data" => break,
                    other => return Err(unexpected("<value> or </data>", &other)),
                }
            },
            Tok::Empty(t) if t == "data" => {}
            other => return Err(unexpected("<data>", &other)),
        }
        self.expect_end("array")?;
        self.expect_end("value")?;
        Ok(RawResponse::Array(items))
    }

    /// The body of a `<string>` whose start tag was consumed, as written; consumes
    /// `</string>`. The text up to the next `<` is taken as one slice (quick-xml would stop at
    /// every reference: a 37 MB pool has millions) and the reader moved past it.
    fn raw_string(&mut self) -> Result<&'a str, XmlRpcError> {
        let rest: &'a [u8] = self.reader.get_mut();
        let start = self.doc.len() - rest.len();
        let text = self.doc.get(start..).unwrap_or_default();
        let len = memchr::memchr(b'<', text.as_bytes()).unwrap_or(text.len());
        *self.reader.get_mut() = &rest[len..];
        self.skipped += len as u64;
        match self.next_raw()? {
            Tok::End(t) if t == "string" => Ok(&text[..len]),
            Tok::Eof => Err(malformed("the document ends inside <string>")),
            _ => Err(malformed("markup inside <string>")),
        }
    }

    fn typed(&mut self, tag: &str, depth: usize) -> Result<Value, XmlRpcError> {
        match tag {
            "string" => Ok(Value::String(unescape_string(self.raw_string()?)?)),
            "i4" | "int" | "i8" => {
                let text = self.text_until_end(tag)?;
                text.trim()
                    .parse::<i64>()
                    .map(Value::Int)
                    .map_err(|_| malformed(format!("bad integer '{}'", text.trim())))
            }
            "boolean" => {
                let text = self.text_until_end(tag)?;
                match text.trim() {
                    "1" | "true" => Ok(Value::Bool(true)),
                    "0" | "false" => Ok(Value::Bool(false)),
                    other => Err(malformed(format!("bad boolean '{other}'"))),
                }
            }
            "double" => {
                let text = self.text_until_end(tag)?;
                text.trim()
                    .parse::<f64>()
                    .map(Value::Double)
                    .map_err(|_| malformed(format!("bad double '{}'", text.trim())))
            }
            "dateTime.iso8601" => Ok(Value::DateTime(self.text_until_end(tag)?.trim().to_owned())),
            "base64" => {
                let text = self.text_until_end(tag)?;
                let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
                base64::engine::general_purpose::STANDARD
                    .decode(compact.as_bytes())
                    .map(Value::Base64)
                    .map_err(|e| malformed(format!("bad base64: {e}")))
            }
            "nil" => {
                self.expect_end("nil")?;
                Ok(Value::Nil)
            }
            "array" => {
                let mut items = Vec::new();
                match self.next_significant()? {
                    Tok::Start(t) if t == "data" => loop {
                        match self.next_significant()? {
                            Tok::Start(t) if t == "value" => {
                                items.push(self.value_body(depth + 1)?)
                            }
                            Tok::Empty(t) if t == "value" => {
                                items.push(Value::String(String::new()))
                            }
                            Tok::End(t) if t == "data" => break,
                            other => return Err(unexpected("<value> or </data>", &other)),
                        }
                    },
                    Tok::Empty(t) if t == "data" => {}
                    other => return Err(unexpected("<data>", &other)),
                }
                self.expect_end("array")?;
                Ok(Value::Array(items))
            }
            "struct" => {
                let mut members = Vec::new();
                loop {
                    match self.next_significant()? {
                        Tok::Start(t) if t == "member" => {
                            self.expect_start("name")?;
                            let name = self.text_until_end("name")?;
                            let value = match self.next_significant()? {
                                Tok::Start(t) if t == "value" => self.value_body(depth + 1)?,
                                Tok::Empty(t) if t == "value" => Value::String(String::new()),
                                other => return Err(unexpected("<value>", &other)),
                            };
                            self.expect_end("member")?;
                            members.push((name, value));
                        }
                        Tok::End(t) if t == "struct" => break,
                        other => return Err(unexpected("<member> or </struct>", &other)),
                    }
                }
                Ok(Value::Struct(members))
            }
            other => Err(malformed(format!("unknown value type <{}>", other))),
        }
    }
}

fn resolve_ref(r: &quick_xml::events::BytesRef<'_>) -> Result<String, XmlRpcError> {
    if let Some(ch) = r
        .resolve_char_ref()
        .map_err(|e| malformed(format!("bad character reference: {e}")))?
    {
        return Ok(ch.to_string());
    }
    let name = r.xml10_content();
    let text = match name.as_ref() {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        other => return Err(malformed(format!("unknown entity &{other};"))),
    };
    Ok(text.to_owned())
}

fn unescape_text(raw: &str) -> Result<Cow<'_, str>, XmlRpcError> {
    if raw.contains('\r') {
        let normalised = raw.replace("\r\n", "\n").replace('\r', "\n");
        return Ok(Cow::Owned(
            quick_xml::escape::unescape(&normalised)
                .map_err(|e| malformed(format!("bad escape: {e}")))?
                .into_owned(),
        ));
    }
    quick_xml::escape::unescape(raw).map_err(|e| malformed(format!("bad escape: {e}")))
}

/// Unescapes the body of a `<string>`: the five predefined entities, character references and
/// XML end-of-line normalisation (`\r\n` and `\r` become `\n`). A large body (a pool document
/// has a reference every few bytes) is cut before `&`s into pieces unescaped on several threads.
fn unescape_string(raw: &str) -> Result<String, XmlRpcError> {
    let bytes = raw.as_bytes();
    let Some(first) = memchr::memchr2(b'&', b'\r', bytes) else {
        return Ok(raw.to_owned());
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pieces = threads.min(8).min(bytes.len() / PARALLEL_MIN_BYTES).max(1);
    // Cuts just before an `&` (never inside a reference or a CR LF pair).
    let mut cuts = vec![first];
    for k in 1..pieces {
        let from = (bytes.len() * k / pieces).max(first);
        if let Some(at) = memchr::memchr(b'&', &bytes[from..]) {
            cuts.push(from + at);
        }
    }
    cuts.push(bytes.len());
    cuts.dedup();
    // Each piece writes into its own region of the input's size (the output is never longer).
    let mut out = vec![0u8; bytes.len()];
    out[..first].copy_from_slice(&bytes[..first]);
    let mut regions = Vec::with_capacity(cuts.len());
    let mut rest = &mut out[first..];
    for w in cuts.windows(2) {
        let (region, tail) = rest.split_at_mut(w[1] - w[0]);
        regions.push((&raw[w[0]..w[1]], region));
        rest = tail;
    }
    let written: Vec<Result<usize, XmlRpcError>> = if regions.len() == 1 {
        regions
            .into_iter()
            .map(|(piece, region)| unescape_into(piece, region))
            .collect()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = regions
                .into_iter()
                .map(|(piece, region)| scope.spawn(move || unescape_into(piece, region)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(malformed("unescaping failed")))
                })
                .collect()
        })
    };
    let mut end = first;
    for (w, n) in cuts.windows(2).zip(written) {
        let n = n?;
        out.copy_within(w[0]..w[0] + n, end);
        end += n;
    }
    out.truncate(end);
    // Only whole UTF-8 sequences were copied or written, so this holds; checked all the same.
    String::from_utf8(out).map_err(|_| malformed("the unescaped string is not UTF-8"))
}

/// Below this size a string is unescaped on one thread.
const PARALLEL_MIN_BYTES: usize = 1 << 20;

/// Unescapes `raw` into `out` (at least as long); returns the bytes written. Copies byte by byte:
/// with a reference every few bytes this beats a memcpy call per run.
fn unescape_into(raw: &str, out: &mut [u8]) -> Result<usize, XmlRpcError> {
    let bytes = raw.as_bytes();
    let (mut r, mut w) = (0, 0);
    while let Some(&b) = bytes.get(r) {
        match b {
            b'&' => {
                let (ch, len) = match (bytes.get(r + 1..r + 4), bytes.get(r + 1..r + 5)) {
                    (Some(b"lt;"), _) => (b'<', 4),
                    (Some(b"gt;"), _) => (b'>', 4),
                    (_, Some(b"amp;")) => (b'&', 5),
                    _ => {
                        let end = raw[r..]
                            .find(';')
                            .ok_or_else(|| malformed("bad escape: a reference without ';'"))?;
                        let mut utf8 = [0u8; 4];
                        let ch = reference(&raw[r + 1..r + end])?.encode_utf8(&mut utf8);
                        // A reference is longer than its UTF-8 encoding.
                        out[w..w + ch.len()].copy_from_slice(ch.as_bytes());
                        w += ch.len();
                        r += end + 1;
                        continue;
                    }
                };
                out[w] = ch;
                w += 1;
                r += len;
            }
            b'\r' => {
                out[w] = b'\n';
                w += 1;
                r += 1 + usize::from(bytes.get(r + 1) == Some(&b'\n'));
            }
            _ => {
                out[w] = b;
                w += 1;
                r += 1;
            }
        }
    }
    Ok(w)
}

/// The character of a reference name (`quot`, `#38`, `#x26`, ...).
fn reference(name: &str) -> Result<char, XmlRpcError> {
    let code = match name {
        "lt" => return Ok('<'),
        "gt" => return Ok('>'),
        "amp" => return Ok('&'),
        "apos" => return Ok('\''),
        "quot" => return Ok('"'),
        _ => match name.strip_prefix('#') {
            Some(num) if num.starts_with(['+', '-']) => None,
            Some(num) => match num.strip_prefix('x') {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => num.parse::<u32>().ok(),
            },
            None => return Err(malformed(format!("unknown entity &{name};"))),
        },
    };
    code.filter(|&c| c != 0)
        .and_then(char::from_u32)
        .ok_or_else(|| malformed(format!("bad character reference &{name};")))
}
