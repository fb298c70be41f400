//! Driver records → plain Python values (tuples and dicts) that `driver.py` turns into libcloud
//! objects.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::driver::{NodeRecord, VolumeRecord};
use crate::marketplace::ImageEntry;
use crate::one::states;

/// `(site, vm_id, name, state, public_ips, private_ips, size, image_id, created, extra)`
pub type NodeTuple<'py> = (
    String,
    i64,
    String,
    &'static str,
    Vec<String>,
    Vec<String>,
    Option<(String, u32, u64, u64)>,
    Option<String>,
    i64,
    Bound<'py, PyDict>,
);

pub fn node<'py>(py: Python<'py>, r: NodeRecord) -> PyResult<NodeTuple<'py>> {
    let extra = PyDict::new(py);
    let vm = &r.vm;
    extra.set_item("host", vm.current_host())?;
    extra.set_item("state", vm.state)?;
    extra.set_item("state_name", states::state_name(vm.state))?;
    extra.set_item("lcm_state", vm.lcm_state)?;
    extra.set_item("lcm_state_name", states::lcm_state_name(vm.lcm_state))?;
    extra.set_item("summary", states::summary_label(vm.state, vm.lcm_state))?;
    extra.set_item("owner", &vm.uname)?;
    extra.set_item("group", &vm.gname)?;
    extra.set_item("deploy_id", &vm.deploy_id)?;
    extra.set_item("cpu", vm.template.cpu)?;
    extra.set_item("vcpu", vm.template.vcpu)?;
    extra.set_item("memory_mib", vm.template.memory_mib)?;
    let nics = PyList::empty(py);
    for n in &vm.template.nics {
        let d = PyDict::new(py);
        d.set_item("network", &n.network)?;
        d.set_item("ip", &n.ip)?;
        d.set_item("mac", &n.mac)?;
        nics.append(d)?;
    }
    extra.set_item("nics", nics)?;
    extra.set_item("volumes", r.volumes.into_pyobject(py)?)?;
    if let Some(m) = &vm.template.error_message {
        extra.set_item("error_message", m)?;
    }
    let vm = r.vm;
    Ok((
        r.site,
        vm.id,
        vm.name,
        r.state,
        r.public_ips,
        r.private_ips,
        r.size,
        r.image_id,
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
