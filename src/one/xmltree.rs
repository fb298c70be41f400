//! A small element tree for the OpenNebula documents that are read whole and rarely (image,
//! template and virtual network pools, one VM's disks): text and CDATA joined, entities
//! resolved, attributes ignored (OpenNebula documents have none). The VM pool, read often and
//! large, has its own streaming reader (`vm.rs`).

use quick_xml::events::Event;

/// An element: its name, its text (CDATA included) and its child elements in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

/// Why a document did not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable XML at byte {position}: {message}")]
pub struct XmlTreeError {
    pub position: u64,
    pub message: String,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child named `name`.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// The text of the first child named `name`, as a number (`None` when absent, empty or not
    /// a number).
    pub fn num<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.text_of(name).and_then(|t| t.trim().parse().ok())
    }

    /// The text at a `/`-separated path of child names.
    pub fn path(&self, path: &str) -> Option<&str> {
        let mut el = self;
        for part in path.split('/') {
            el = el.child(part)?;
        }
        Some(el.text.as_str())
    }
}

/// Reads a whole document; its root element.
pub fn parse(xml: &str) -> Result<Element, XmlTreeError> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Element> = vec![Element::default()];
    let error = |reader: &quick_xml::Reader<&[u8]>, message: String| XmlTreeError {
        position: reader.buffer_position(),
        message,
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| error(&reader, e.to_string()))?;
        match event {
            Event::Start(e) => stack.push(Element {
                name: e.name().as_ref().to_owned(),
                ..Element::default()
            }),
            Event::Empty(e) => {
                let el = Element {
                    name: e.name().as_ref().to_owned(),
                    ..Element::default()
                };
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(el);
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| error(&reader, "unbalanced end tag".into()))?;
                let parent = stack
                    .last_mut()
                    .ok_or_else(|| error(&reader, "unbalanced end tag".into()))?;
                parent.children.push(el);
            }
            Event::Text(t) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&t);
                }
            }
            Event::CData(t) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&t);
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => match r.xml10_content().as_ref() {
                        "lt" => "<".to_owned(),
                        "gt" => ">".to_owned(),
                        "amp" => "&".to_owned(),
                        "apos" => "'".to_owned(),
                        "quot" => "\"".to_owned(),
                        other => return Err(error(&reader, format!("unknown entity &{other};"))),
                    },
                    Err(e) => return Err(error(&reader, e.to_string())),
                };
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        return Err(XmlTreeError {
            position: xml.len() as u64,
            message: "truncated document".into(),
        });
    }
    stack
        .pop()
        .and_then(|mut root| root.children.pop())
        .ok_or_else(|| XmlTreeError {
            position: 0,
            message: "no root element".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_cdata_entities_and_empty_elements() {
        let root = parse("<A><B>x &amp; <![CDATA[<y>]]>&#65;</B><C/><B>2</B></A>").unwrap();
        assert_eq!(root.name, "A");
        assert_eq!(root.text_of("B"), Some("x & <y>A"));
        assert_eq!(root.children_named("B").count(), 2);
        assert_eq!(root.text_of("C"), Some(""));
        assert_eq!(root.num::<i64>("C"), None);
        assert!(parse("<A><B></A>").is_err());
        assert!(parse("<A>").is_err());
        assert!(parse("").is_err());
        assert!(parse("<A>&bogus;</A>").is_err());
    }
}
