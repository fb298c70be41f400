//! Driver records → plain Python values (tuples and dicts) that `driver.py` turns into libcloud
//! objects.

use std::collections::HashMap;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::driver::{NodeRecord, VolumeRecord};
use crate::marketplace::ImageEntry;
use crate::one::states;

/// `(site, vm_id, name, state, public_ips, private_ips, size, image_id, created, extra)`; `extra`
/// already holds `location` and `vm_id`.
pub type NodeTuple<'py> = (
    Bound<'py, PyString>,
    i64,
    Bound<'py, PyString>,
    Bound<'py, PyString>,
    Bound<'py, PyList>,
    Bound<'py, PyList>,
    Option<(Bound<'py, PyString>, u32, u64, u64)>,
    Option<Bound<'py, PyString>>,
    i64,
    Bound<'py, PyDict>,
);

/// Python strings of the values that repeat from node to node (site, owner, group, host,
/// network, state names, sizes, images): one object per distinct value in a listing. Each call
/// site passes its own slot number, so a field's first few values are found by comparing only
/// with each other (no hashing); more go to a map.
pub struct Strings<'py> {
    py: Python<'py>,
    slots: Vec<Vec<(String, Bound<'py, PyString>)>>,
    many: HashMap<String, Bound<'py, PyString>>,
}

/// Values kept per slot of [`Strings`] before its map is used.
const FEW: usize = 8;

impl<'py> Strings<'py> {
    pub fn new(py: Python<'py>) -> Self {
        Strings {
            py,
            slots: Vec::new(),
            many: HashMap::new(),
        }
    }

    /// The shared Python string of `text` (a value of the field numbered `slot`).
    pub fn get(&mut self, slot: usize, text: &str) -> Bound<'py, PyString> {
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, Vec::new);
        }
        let few = &mut self.slots[slot];
        if let Some((_, s)) = few.iter().find(|(t, _)| t == text) {
            return s.clone();
        }
        if let Some(s) = self.many.get(text) {
            return s.clone();
        }
        let s = PyString::new(self.py, text);
        if few.len() < FEW {
            few.push((text.to_owned(), s.clone()));
        } else {
            self.many.insert(text.to_owned(), s.clone());
        }
        s
    }

    fn opt(&mut self, slot: usize, text: Option<&str>) -> Option<Bound<'py, PyString>> {
        text.map(|t| self.get(slot, t))
    }
}

/// One node record as plain Python values (dict keys interned, repeated values shared). The
/// record is only read: a listing's records are freed off the interpreter's thread.
pub fn node<'py>(
    py: Python<'py>,
    r: &NodeRecord,
    strings: &mut Strings<'py>,
) -> PyResult<NodeTuple<'py>> {
    let extra = PyDict::new(py);
    let vm = &r.vm;
    let site = strings.get(0, &r.site);
    extra.set_item(intern!(py, "host"), strings.opt(1, vm.current_host()))?;
    extra.set_item(intern!(py, "state"), vm.state)?;
    extra.set_item(
        intern!(py, "state_name"),
        strings.opt(
            2,
            // 3.x names, else those 4.x–7.x added (UNDEPLOYED, CLONING, LCM 23..=71).
            states::state_name(vm.state).or_else(|| states::state_name_in(7, vm.state)),
        ),
    )?;
    extra.set_item(intern!(py, "lcm_state"), vm.lcm_state)?;
    extra.set_item(
        intern!(py, "lcm_state_name"),
        strings.opt(
            3,
            states::lcm_state_name(vm.lcm_state)
                .or_else(|| states::lcm_state_name_in(7, vm.lcm_state)),
        ),
    )?;
    extra.set_item(
        intern!(py, "summary"),
        strings.get(4, states::summary_label(vm.state, vm.lcm_state)),
    )?;
    extra.set_item(intern!(py, "owner"), strings.get(5, &vm.uname))?;
    extra.set_item(intern!(py, "group"), strings.get(6, &vm.gname))?;
    extra.set_item(intern!(py, "deploy_id"), &vm.deploy_id)?;
    extra.set_item(intern!(py, "cpu"), vm.template.cpu)?;
    extra.set_item(intern!(py, "vcpu"), vm.template.vcpu)?;
    extra.set_item(intern!(py, "memory_mib"), vm.template.memory_mib)?;
    let nics = PyList::empty(py);
    for n in &vm.template.nics {
        let d = PyDict::new(py);
        d.set_item(intern!(py, "network"), strings.opt(7, n.network.as_deref()))?;
        d.set_item(intern!(py, "ip"), &n.ip)?;
        d.set_item(intern!(py, "mac"), &n.mac)?;
        nics.append(d)?;
    }
    extra.set_item(intern!(py, "nics"), nics)?;
    extra.set_item(intern!(py, "volumes"), (&r.volumes).into_pyobject(py)?)?;
    if let Some(m) = &vm.template.error_message {
        extra.set_item(intern!(py, "error_message"), m)?;
    }
    if let Some(t) = &vm.template.client_token {
        extra.set_item(intern!(py, "client_token"), t)?;
    }
    extra.set_item(intern!(py, "location"), &site)?;
    extra.set_item(intern!(py, "vm_id"), vm.id)?;
    let size = r
        .size
        .as_ref()
        .map(|(name, cpu, ram, swap)| (strings.get(8, name), *cpu, *ram, *swap));
    Ok((
        site,
        vm.id,
        PyString::new(py, &vm.name),
        strings.get(9, r.state),
        PyList::new(py, &r.public_ips)?,
        PyList::new(py, &r.private_ips)?,
        size,
        strings.opt(10, r.image_id.as_deref()),
        vm.stime,
        extra,
    ))
}

/// `(id, name, extra)` of a Marketplace entry (keys interned, repeated values shared).
pub type ImageTuple<'py> = (
    Bound<'py, PyString>,
    Bound<'py, PyString>,
    Bound<'py, PyDict>,
);

/// The keys of an image's `extra`, in order, each bound to `None`: every `extra` of a listing
/// starts as a copy of it (`PyDict_Copy` copies the key table whole, where a new dict would be
/// resized three times as it fills), then its values are replaced.
pub fn image_template(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let template = PyDict::new(py);
    for key in [
        "title",
        "tag",
        "description",
        "os",
        "os_version",
        "arch",
        "version",
        "endorser",
        "created",
        "valid_until",
        "deprecated",
        "format",
        "compression",
        "bytes",
        "checksums",
        "locations",
        "kind",
        "type",
        "hypervisor",
        "disks_bus",
        "inbound_ports",
        "outbound_ports",
        "publisher",
        "creator",
        "serial_number",
        "identifier_mismatch",
    ] {
        template.set_item(PyString::intern(py, key), py.None())?;
    }
    Ok(template)
}

/// `(id, name, extra)`; `template` is [`image_template`]'s.
pub fn image<'py>(
    py: Python<'py>,
    e: &ImageEntry,
    strings: &mut Strings<'py>,
    template: &Bound<'py, PyDict>,
) -> PyResult<ImageTuple<'py>> {
    let extra = template.copy()?;
    let title = e.title.as_deref().map(|t| PyString::new(py, t));
    let tag = e.tag.as_deref().map(|t| PyString::new(py, t));
    let identifier = PyString::new(py, &e.identifier);
    // The name is the title's (or the tag's, or the identifier's) string object when it is
    // that value (see ImageEntry::display_name).
    let name = match (&title, &tag) {
        (Some(t), _) | (None, Some(t)) => t.clone(),
        _ => {
            let name = e.display_name();
            if name == e.identifier {
                identifier.clone()
            } else {
                PyString::new(py, &name)
            }
        }
    };
    extra.set_item(intern!(py, "title"), title)?;
    extra.set_item(intern!(py, "tag"), tag)?;
    extra.set_item(intern!(py, "description"), &e.description)?;
    extra.set_item(intern!(py, "os"), strings.opt(0, e.os.as_deref()))?;
    extra.set_item(
        intern!(py, "os_version"),
        strings.opt(1, e.os_version.as_deref()),
    )?;
    extra.set_item(intern!(py, "arch"), strings.opt(2, e.arch.as_deref()))?;
    extra.set_item(intern!(py, "version"), strings.opt(3, e.version.as_deref()))?;
    match &e.endorser {
        Some(en) => {
            let d = PyDict::new(py);
            d.set_item(intern!(py, "email"), strings.get(4, &en.email))?;
            d.set_item(intern!(py, "subject"), strings.get(5, &en.subject))?;
            d.set_item(intern!(py, "issuer"), strings.get(6, &en.issuer))?;
            extra.set_item(intern!(py, "endorser"), d)?;
        }
        None => extra.set_item(intern!(py, "endorser"), py.None())?,
    }
    extra.set_item(intern!(py, "created"), strings.opt(7, e.created.as_deref()))?;
    extra.set_item(
        intern!(py, "valid_until"),
        strings.opt(8, e.valid_until.as_deref()),
    )?;
    extra.set_item(
        intern!(py, "deprecated"),
        strings.opt(9, e.deprecated.as_deref()),
    )?;
    extra.set_item(intern!(py, "format"), strings.opt(10, e.format.as_deref()))?;
    extra.set_item(
        intern!(py, "compression"),
        strings.opt(11, e.compression.as_deref()),
    )?;
    extra.set_item(intern!(py, "bytes"), e.bytes)?;
    let checksums = PyDict::new(py);
    for (alg, hex) in &e.checksums {
        checksums.set_item(strings.get(12, alg), hex)?;
    }
    extra.set_item(intern!(py, "checksums"), checksums)?;
    extra.set_item(intern!(py, "locations"), &e.locations)?;
    extra.set_item(intern!(py, "kind"), strings.opt(13, e.kind.as_deref()))?;
    extra.set_item(
        intern!(py, "type"),
        strings.opt(14, e.image_type.as_deref()),
    )?;
    extra.set_item(
        intern!(py, "hypervisor"),
        strings.opt(15, e.hypervisor.as_deref()),
    )?;
    extra.set_item(
        intern!(py, "disks_bus"),
        strings.opt(16, e.disks_bus.as_deref()),
    )?;
    extra.set_item(intern!(py, "inbound_ports"), &e.inbound_ports)?;
    extra.set_item(intern!(py, "outbound_ports"), &e.outbound_ports)?;
    extra.set_item(
        intern!(py, "publisher"),
        strings.opt(17, e.publisher.as_deref()),
    )?;
    extra.set_item(
        intern!(py, "creator"),
        strings.opt(18, e.creator.as_deref()),
    )?;
    extra.set_item(intern!(py, "serial_number"), e.serial_number)?;
    extra.set_item(intern!(py, "identifier_mismatch"), e.identifier_mismatch)?;
    Ok((identifier, name, extra))
}

/// `(uuid, name, size_gib, state, extra)`; a mounted volume's extra has `mounts` (a list of
/// `(node id, device)`) and the first one's `node` and `device`.
pub fn volume<'py>(
    py: Python<'py>,
    v: VolumeRecord,
) -> PyResult<(String, String, u64, &'static str, Bound<'py, PyDict>)> {
    let d = v.disk;
    let extra = PyDict::new(py);
    let mounts: Vec<(String, String)> = v
        .mounts
        .into_iter()
        .map(|m| (format!("{}@{}", m.vm_id, v.site), m.device))
        .collect();
    if let Some((node, device)) = mounts.first() {
        extra.set_item("node", node)?;
        extra.set_item("device", device)?;
    }
    extra.set_item("mounts", mounts)?;
    extra.set_item("location", &v.site)?;
    extra.set_item("owner", &d.owner)?;
    extra.set_item("visibility", &d.visibility)?;
    extra.set_item("type", &d.disk_type)?;
    extra.set_item("identifier", &d.identifier)?;
    extra.set_item("count", d.count)?;
    extra.set_item("quarantine", &d.quarantine)?;
    extra.set_item("size_raw", d.size)?;
    let state = if d.count > 0 { "inuse" } else { "available" };
    let size = d.size_gib();
    Ok((d.uuid, d.tag, size, state, extra))
}
