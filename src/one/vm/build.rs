//! The record builder: turns the tokens of a VM or pool document into [`VmRecord`]s.

use super::records::{Disk, History, Nic, VmRecord, VmXmlError};
use super::scan::{Ev, Scanner, Tokens};
use super::text::{decode_text, push_normalized};

/// Which piece of a document a parse reads.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Part {
    /// The whole document.
    Whole,
    /// From the start to a cut: must end with only the root element open.
    Head,
    /// Between two cuts, inside the root: complete elements only.
    Middle,
    /// From a cut inside the root to the end of the document.
    Tail,
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Root {
    Vm,
    Pool,
}

/// Where the reader is. Leaf variants collect text; `Skip` is any element we ignore.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum Tag {
    Pool,
    Vm,
    VmField(VmField),
    Template,
    TplField(TplField),
    Disk,
    DiskField(DiskField),
    Nic,
    NicField(NicField),
    Context,
    ContextKey,
    Error,
    ErrorMessage,
    HistoryRecords,
    History,
    HistField(HistField),
    /// `VM/USER_TEMPLATE` (OpenNebula ≥ 4.0): only the client token is read from it.
    UserTemplate,
    Skip,
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum VmField {
    Id,
    Uid,
    Gid,
    Uname,
    Gname,
    Name,
    State,
    LcmState,
    Stime,
    Etime,
    DeployId,
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum TplField {
    Cpu,
    Vcpu,
    Memory,
    Name,
    InboundPorts,
    ClientToken,
    TemplateId,
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum DiskField {
    DiskId,
    Source,
    Image,
    ImageId,
    Target,
    Type,
    Size,
    Driver,
    Format,
    Readonly,
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum NicField {
    Network,
    Ip,
    Mac,
    NetworkId,
    Ip6Global,
    Ip6Ula,
    Ip6Site,
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum HistField {
    Seq,
    Hostname,
    Stime,
    Etime,
}

impl Tag {
    /// The tag of a child element named `name` under `self`.
    fn child(self, name: &str) -> Tag {
        match self {
            Tag::Pool => match name {
                "VM" => Tag::Vm,
                _ => Tag::Skip,
            },
            Tag::Vm => match name {
                "ID" => Tag::VmField(VmField::Id),
                "UID" => Tag::VmField(VmField::Uid),
                "GID" => Tag::VmField(VmField::Gid),
                "UNAME" => Tag::VmField(VmField::Uname),
                "GNAME" => Tag::VmField(VmField::Gname),
                "NAME" => Tag::VmField(VmField::Name),
                "STATE" => Tag::VmField(VmField::State),
                "LCM_STATE" => Tag::VmField(VmField::LcmState),
                "STIME" => Tag::VmField(VmField::Stime),
                "ETIME" => Tag::VmField(VmField::Etime),
                "DEPLOY_ID" => Tag::VmField(VmField::DeployId),
                "TEMPLATE" => Tag::Template,
                "HISTORY_RECORDS" => Tag::HistoryRecords,
                "USER_TEMPLATE" => Tag::UserTemplate,
                _ => Tag::Skip,
            },
            Tag::UserTemplate => match name {
                "CLIENT_TOKEN" => Tag::TplField(TplField::ClientToken),
                _ => Tag::Skip,
            },
            Tag::Template => match name {
                "CPU" => Tag::TplField(TplField::Cpu),
                "VCPU" => Tag::TplField(TplField::Vcpu),
                "MEMORY" => Tag::TplField(TplField::Memory),
                "NAME" => Tag::TplField(TplField::Name),
                "INBOUND_PORTS" => Tag::TplField(TplField::InboundPorts),
                "CLIENT_TOKEN" => Tag::TplField(TplField::ClientToken),
                "TEMPLATE_ID" => Tag::TplField(TplField::TemplateId),
                "DISK" => Tag::Disk,
                "NIC" => Tag::Nic,
                "CONTEXT" => Tag::Context,
                "ERROR" => Tag::Error,
                _ => Tag::Skip,
            },
            Tag::Disk => match name {
                "DISK_ID" => Tag::DiskField(DiskField::DiskId),
                "SOURCE" => Tag::DiskField(DiskField::Source),
                "IMAGE" => Tag::DiskField(DiskField::Image),
                "IMAGE_ID" => Tag::DiskField(DiskField::ImageId),
                "TARGET" => Tag::DiskField(DiskField::Target),
                "TYPE" => Tag::DiskField(DiskField::Type),
                "SIZE" => Tag::DiskField(DiskField::Size),
                "DRIVER" => Tag::DiskField(DiskField::Driver),
                "FORMAT" => Tag::DiskField(DiskField::Format),
                "READONLY" => Tag::DiskField(DiskField::Readonly),
                _ => Tag::Skip,
            },
            Tag::Nic => match name {
                "NETWORK" => Tag::NicField(NicField::Network),
                "IP" => Tag::NicField(NicField::Ip),
                "MAC" => Tag::NicField(NicField::Mac),
                "NETWORK_ID" => Tag::NicField(NicField::NetworkId),
                "IP6_GLOBAL" => Tag::NicField(NicField::Ip6Global),
                "IP6_ULA" => Tag::NicField(NicField::Ip6Ula),
                "IP6_SITE" => Tag::NicField(NicField::Ip6Site),
                _ => Tag::Skip,
            },
            Tag::Context => Tag::ContextKey,
            Tag::Error => match name {
                "MESSAGE" => Tag::ErrorMessage,
                _ => Tag::Skip,
            },
            Tag::HistoryRecords => match name {
                "HISTORY" => Tag::History,
                _ => Tag::Skip,
            },
            Tag::History => match name {
                "SEQ" => Tag::HistField(HistField::Seq),
                "HOSTNAME" => Tag::HistField(HistField::Hostname),
                "STIME" => Tag::HistField(HistField::Stime),
                "ETIME" => Tag::HistField(HistField::Etime),
                _ => Tag::Skip,
            },
            _ => Tag::Skip,
        }
    }

    /// Leaf elements whose text we keep.
    fn collects(self) -> bool {
        matches!(
            self,
            Tag::VmField(_)
                | Tag::TplField(_)
                | Tag::DiskField(_)
                | Tag::NicField(_)
                | Tag::ContextKey
                | Tag::ErrorMessage
                | Tag::HistField(_)
        )
    }
}

/// Text of the current leaf: raw pieces plus where CDATA content starts and ends, so that the
/// whitespace around CDATA (pretty-printing) is trimmed but CDATA content is kept verbatim.
#[derive(Default)]
pub(super) struct Text {
    buf: String,
    cdata: Option<(usize, usize)>,
}

impl Text {
    fn clear(&mut self) {
        self.buf.clear();
        self.cdata = None;
    }

    fn push_cdata(&mut self, s: &str) {
        let start = self.buf.len();
        push_normalized(&mut self.buf, s);
        let end = self.buf.len();
        self.cdata = Some(match self.cdata {
            Some((first, _)) => (first, end),
            None => (start, end),
        });
    }

    /// The value: trimmed, except inside the CDATA span.
    fn value(&self) -> &str {
        match self.cdata {
            None => self.buf.trim(),
            Some((start, end)) => {
                let head = self.buf.get(..start).unwrap_or("");
                let tail = self.buf.get(end..).unwrap_or("");
                let from = head.len() - head.trim_start().len();
                let to = end + tail.trim_end().len();
                self.buf.get(from..to).unwrap_or("")
            }
        }
    }
}

pub(super) fn int<T: std::str::FromStr>(element: &'static str, s: &str) -> Result<T, VmXmlError> {
    s.parse().map_err(|_| VmXmlError::Number {
        element,
        value: s.to_owned(),
    })
}

pub(super) fn opt_string(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

pub(super) fn yes_no(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("yes") {
        Some(true)
    } else if s.eq_ignore_ascii_case("no") {
        Some(false)
    } else {
        None
    }
}

/// The VM being read and which required elements were seen.
#[derive(Default)]
pub(super) struct Building {
    vm: VmRecord,
    seen_id: bool,
    seen_state: bool,
    seen_lcm: bool,
    /// IPv6 candidates by priority (global, ULA, site).
    ip6: [Option<String>; 3],
}

impl Building {
    fn finish(self) -> Result<VmRecord, VmXmlError> {
        if !self.seen_id {
            return Err(VmXmlError::Missing { element: "ID" });
        }
        if !self.seen_state {
            return Err(VmXmlError::Missing { element: "STATE" });
        }
        if !self.seen_lcm {
            return Err(VmXmlError::Missing {
                element: "LCM_STATE",
            });
        }
        Ok(self.vm)
    }

    fn set_vm(&mut self, f: VmField, v: &str) -> Result<(), VmXmlError> {
        let vm = &mut self.vm;
        match f {
            VmField::Id => {
                vm.id = int("ID", v)?;
                self.seen_id = true;
            }
            VmField::Uid => vm.uid = int("UID", v)?,
            VmField::Gid => vm.gid = int("GID", v)?,
            VmField::Uname => v.clone_into(&mut vm.uname),
            VmField::Gname => v.clone_into(&mut vm.gname),
            VmField::Name => v.clone_into(&mut vm.name),
            VmField::State => {
                vm.state = int("STATE", v)?;
                self.seen_state = true;
            }
            VmField::LcmState => {
                vm.lcm_state = int("LCM_STATE", v)?;
                self.seen_lcm = true;
            }
            VmField::Stime => vm.stime = int("STIME", v)?,
            VmField::Etime => vm.etime = int("ETIME", v)?,
            VmField::DeployId => v.clone_into(&mut vm.deploy_id),
        }
        Ok(())
    }

    fn set_template(&mut self, f: TplField, v: &str) {
        // Template values come from the user through oned; an odd one is dropped, not fatal.
        let t = &mut self.vm.template;
        match f {
            TplField::Cpu => t.cpu = v.parse().ok(),
            TplField::Vcpu => t.vcpu = v.parse().ok(),
            TplField::Memory => t.memory_mib = v.parse().ok(),
            TplField::Name => t.name = opt_string(v),
            TplField::InboundPorts => t.inbound_ports = opt_string(v),
            TplField::ClientToken => t.client_token = opt_string(v),
            TplField::TemplateId => t.template_id = v.parse().ok(),
        }
    }

    fn set_disk(&mut self, f: DiskField, v: &str) {
        let Some(d) = self.vm.template.disks.last_mut() else {
            return;
        };
        match f {
            DiskField::DiskId => d.disk_id = v.parse().ok(),
            DiskField::Source => d.source = opt_string(v),
            DiskField::Image => d.image = opt_string(v),
            DiskField::ImageId => d.image_id = v.parse().ok(),
            DiskField::Target => d.target = opt_string(v),
            DiskField::Type => d.disk_type = opt_string(v),
            DiskField::Size => d.size_mib = v.parse().ok(),
            DiskField::Driver => d.driver = opt_string(v),
            DiskField::Format => d.format = opt_string(v),
            DiskField::Readonly => d.readonly = yes_no(v),
        }
    }

    fn set_nic(&mut self, f: NicField, v: &str) {
        let Some(n) = self.vm.template.nics.last_mut() else {
            return;
        };
        match f {
            NicField::Network => n.network = opt_string(v),
            NicField::Ip => n.ip = opt_string(v),
            NicField::Mac => n.mac = opt_string(v),
            NicField::NetworkId => n.network_id = v.parse().ok(),
            NicField::Ip6Global => self.ip6[0] = opt_string(v),
            NicField::Ip6Ula => self.ip6[1] = opt_string(v),
            NicField::Ip6Site => self.ip6[2] = opt_string(v),
        }
    }

    fn end_nic(&mut self) {
        let ip6 = self.ip6.iter_mut().find_map(Option::take);
        self.ip6 = Default::default();
        if let Some(n) = self.vm.template.nics.last_mut() {
            n.ip6 = ip6;
        }
    }

    fn set_history(&mut self, f: HistField, v: &str) -> Result<(), VmXmlError> {
        let Some(h) = self.vm.history.last_mut() else {
            return Ok(());
        };
        match f {
            HistField::Seq => h.seq = int("SEQ", v)?,
            HistField::Hostname => v.clone_into(&mut h.hostname),
            HistField::Stime => h.stime = int("HISTORY/STIME", v)?,
            HistField::Etime => h.etime = int("HISTORY/ETIME", v)?,
        }
        Ok(())
    }
}

pub(super) struct Parser {
    root: Root,
    stack: Vec<Tag>,
    text: Text,
    /// Name of the CONTEXT entry being read.
    context_key: String,
    current: Option<Building>,
    seen_root: bool,
}

impl Parser {
    fn start(&mut self, name: &str) -> Result<Tag, VmXmlError> {
        let tag = match self.stack.last() {
            // A listing's records leave CONTEXT out (user data can be most of a VM's
            // document, and no listing uses it); `one.vm.info` reads it.
            Some(Tag::Template) if self.root == Root::Pool && name == "CONTEXT" => Tag::Skip,
            Some(parent) => parent.child(name),
            None => {
                let (expected, tag): (&'static str, Tag) = match self.root {
                    Root::Vm => ("VM", Tag::Vm),
                    Root::Pool => ("VM_POOL", Tag::Pool),
                };
                if self.seen_root || name != expected {
                    return Err(VmXmlError::Root {
                        expected,
                        found: name.to_owned(),
                    });
                }
                self.seen_root = true;
                tag
            }
        };
        match tag {
            Tag::Vm => self.current = Some(Building::default()),
            Tag::Disk => self.vm_mut().template.disks.push(Disk::default()),
            Tag::Nic => self.vm_mut().template.nics.push(Nic::default()),
            Tag::History => self.vm_mut().history.push(History::default()),
            Tag::ContextKey => {
                name.clone_into(&mut self.context_key);
            }
            _ => {}
        }
        if tag.collects() {
            self.text.clear();
        }
        Ok(tag)
    }

    fn vm_mut(&mut self) -> &mut VmRecord {
        &mut self.current.get_or_insert_with(Building::default).vm
    }

    fn end(&mut self, tag: Tag, out: &mut Vec<VmRecord>) -> Result<(), VmXmlError> {
        if tag.collects() {
            let b = self.current.get_or_insert_with(Building::default);
            let v = self.text.value();
            match tag {
                Tag::VmField(f) => b.set_vm(f, v)?,
                Tag::TplField(f) => b.set_template(f, v),
                Tag::DiskField(f) => b.set_disk(f, v),
                Tag::NicField(f) => b.set_nic(f, v),
                Tag::HistField(f) => b.set_history(f, v)?,
                Tag::ContextKey => {
                    b.vm.template
                        .context
                        .push((std::mem::take(&mut self.context_key), v.to_owned()))
                }
                Tag::ErrorMessage => b.vm.template.error_message = opt_string(v),
                _ => {}
            }
            return Ok(());
        }
        match tag {
            Tag::Nic => {
                if let Some(b) = self.current.as_mut() {
                    b.end_nic();
                }
            }
            Tag::Vm => {
                if let Some(b) = self.current.take() {
                    out.push(b.finish()?);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

pub(super) fn parse(
    doc: &str,
    root: Root,
    part: Part,
    out: &mut Vec<VmRecord>,
) -> Result<(), VmXmlError> {
    parse_tokens(Scanner::new(doc), root, part, out)
}

pub(super) fn parse_tokens<'a>(
    mut sc: impl Tokens<'a>,
    root: Root,
    part: Part,
    out: &mut Vec<VmRecord>,
) -> Result<(), VmXmlError> {
    let mut p = Parser {
        root,
        stack: Vec::with_capacity(8),
        text: Text::default(),
        context_key: String::new(),
        current: None,
        seen_root: false,
    };
    // Names of the open elements, for matching end tags.
    let mut open: Vec<&str> = Vec::with_capacity(8);
    if matches!(part, Part::Middle | Part::Tail) {
        p.stack.push(Tag::Pool);
        p.seen_root = true;
        open.push("VM_POOL");
    }
    loop {
        match sc.next()? {
            Ev::Start(name) => {
                let tag = p.start(name)?;
                p.stack.push(tag);
                open.push(name);
            }
            Ev::Empty(name) => {
                let tag = p.start(name)?;
                p.end(tag, out)?;
            }
            Ev::End(name) => {
                if open.pop() != Some(name) {
                    return Err(sc.error(format!("unexpected end tag </{name}>")));
                }
                let tag = p.stack.pop().ok_or(VmXmlError::Truncated)?;
                p.end(tag, out)?;
            }
            Ev::Text(raw) => {
                let t = sc.chars(raw)?;
                if p.stack.last().is_some_and(|t| t.collects()) {
                    decode_text(&t, Some(&mut p.text.buf)).map_err(|e| sc.error(e))?;
                } else if p.stack.is_empty() && !t.trim().is_empty() {
                    return Err(sc.error("text outside the root element"));
                } else if t.contains('&') {
                    decode_text(&t, None).map_err(|e| sc.error(e))?;
                }
            }
            Ev::CData(raw) => {
                let t = sc.chars(raw)?;
                if p.stack.last().is_some_and(|t| t.collects()) {
                    p.text.push_cdata(&t);
                } else if p.stack.is_empty() {
                    return Err(sc.error("CDATA outside the root element"));
                }
            }
            Ev::Eof => break,
        }
    }
    let complete = match part {
        Part::Whole | Part::Tail => p.stack.is_empty(),
        Part::Head | Part::Middle => p.stack == [Tag::Pool] && p.current.is_none(),
    };
    if !complete || !p.seen_root {
        return Err(VmXmlError::Truncated);
    }
    Ok(())
}
