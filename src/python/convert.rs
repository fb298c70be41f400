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
/// network, state names, sizes, images): one object per distinct value in a listing. The first
/// few distinct values are found by comparison (no hashing), later ones in a map.
pub struct Strings<'py> {
    py: Python<'py>,
    few: Vec<(String, Bound<'py, PyString>)>,
    many: HashMap<String, Bound<'py, PyString>>,
}

/// Distinct values kept in [`Strings`]' list before its map is used.
const FEW: usize = 32;

impl<'py> Strings<'py> {
    pub fn new(py: Python<'py>) -> Self {
        Strings {
            py,
            few: Vec::new(),
            many: HashMap::new(),
        }
    }

    /// The shared Python string of `text`.
    pub fn get(&mut self, text: &str) -> Bound<'py, PyString> {
        if let Some((_, s)) = self.few.iter().find(|(t, _)| t == text) {
            return s.clone();
        }
        if let Some(s) = self.many.get(text) {
            return s.clone();
        }
        let s = PyString::new(self.py, text);
        if self.few.len() < FEW {
            self.few.push((text.to_owned(), s.clone()));
        } else {
            self.many.insert(text.to_owned(), s.clone());
        }
        s
    }

    fn opt(&mut self, text: Option<&str>) -> Option<Bound<'py, PyString>> {
        text.map(|t| self.get(t))
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
    let site = strings.get(&r.site);
    extra.set_item(intern!(py, "host"), strings.opt(vm.current_host()))?;
    extra.set_item(intern!(py, "state"), vm.state)?;
    extra.set_item(
        intern!(py, "state_name"),
        strings.opt(states::state_name(vm.state)),
    )?;
    extra.set_item(intern!(py, "lcm_state"), vm.lcm_state)?;
    extra.set_item(
        intern!(py, "lcm_state_name"),
        strings.opt(states::lcm_state_name(vm.lcm_state)),
    )?;
    extra.set_item(
        intern!(py, "summary"),
        strings.get(states::summary_label(vm.state, vm.lcm_state)),
    )?;
    extra.set_item(intern!(py, "owner"), strings.get(&vm.uname))?;
    extra.set_item(intern!(py, "group"), strings.get(&vm.gname))?;
    extra.set_item(intern!(py, "deploy_id"), &vm.deploy_id)?;
    extra.set_item(intern!(py, "cpu"), vm.template.cpu)?;
    extra.set_item(intern!(py, "vcpu"), vm.template.vcpu)?;
    extra.set_item(intern!(py, "memory_mib"), vm.template.memory_mib)?;
    let nics = PyList::empty(py);
    for n in &vm.template.nics {
        let d = PyDict::new(py);
        d.set_item(intern!(py, "network"), strings.opt(n.network.as_deref()))?;
        d.set_item(intern!(py, "ip"), &n.ip)?;
        d.set_item(intern!(py, "mac"), &n.mac)?;
        nics.append(d)?;
    }
    extra.set_item(intern!(py, "nics"), nics)?;
    extra.set_item(intern!(py, "volumes"), (&r.volumes).into_pyobject(py)?)?;
    if let Some(m) = &vm.template.error_message {
        extra.set_item(intern!(py, "error_message"), m)?;
    }
    extra.set_item(intern!(py, "location"), &site)?;
    extra.set_item(intern!(py, "vm_id"), vm.id)?;
    let size = r
        .size
        .as_ref()
        .map(|(name, cpu, ram, swap)| (strings.get(name), *cpu, *ram, *swap));
    Ok((
        site,
        vm.id,
        PyString::new(py, &vm.name),
        strings.get(r.state),
        PyList::new(py, &r.public_ips)?,
        PyList::new(py, &r.private_ips)?,
        size,
        strings.opt(r.image_id.as_deref()),
        vm.stime,
        extra,
    ))
}

/// `(id, name, extra)`
pub fn image<'py>(
    py: Python<'py>,
    e: ImageEntry,
) -> PyResult<(String, String, Bound<'py, PyDict>)> {
    let extra = PyDict::new(py);
    let name = e.display_name();
    extra.set_item("title", &e.title)?;
    extra.set_item("tag", &e.tag)?;
    extra.set_item("description", &e.description)?;
    extra.set_item("os", &e.os)?;
    extra.set_item("os_version", &e.os_version)?;
    extra.set_item("arch", &e.arch)?;
    extra.set_item("version", &e.version)?;
    match &e.endorser {
        Some(en) => {
            let d = PyDict::new(py);
            d.set_item("email", &en.email)?;
            d.set_item("subject", &en.subject)?;
            d.set_item("issuer", &en.issuer)?;
            extra.set_item("endorser", d)?;
        }
        None => extra.set_item("endorser", py.None())?,
    }
    extra.set_item("created", &e.created)?;
    extra.set_item("valid_until", &e.valid_until)?;
    extra.set_item("deprecated", &e.deprecated)?;
    extra.set_item("format", &e.format)?;
    extra.set_item("compression", &e.compression)?;
    extra.set_item("bytes", e.bytes)?;
    let checksums = PyDict::new(py);
    for (alg, hex) in &e.checksums {
        checksums.set_item(alg, hex)?;
    }
    extra.set_item("checksums", checksums)?;
    extra.set_item("locations", &e.locations)?;
    extra.set_item("kind", &e.kind)?;
    extra.set_item("type", &e.image_type)?;
    extra.set_item("hypervisor", &e.hypervisor)?;
    extra.set_item("disks_bus", &e.disks_bus)?;
    extra.set_item("inbound_ports", &e.inbound_ports)?;
    extra.set_item("outbound_ports", &e.outbound_ports)?;
    extra.set_item("publisher", &e.publisher)?;
    extra.set_item("creator", &e.creator)?;
    extra.set_item("serial_number", e.serial_number)?;
    extra.set_item("identifier_mismatch", e.identifier_mismatch)?;
    Ok((e.identifier, name, extra))
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
