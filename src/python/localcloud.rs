//! `LocalCloudServer`: the Rust local cloud behind `stratuslab_libcloud.LocalCloud`.

use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::errors::{block, run};
use crate::error::{Classify, Error, Kind};
use crate::localcloud::cloud::{LocalCloud, LocalCloudOptions};
use crate::localcloud::faults::{FaultKind, FaultRule, Service};

#[pyclass(frozen, module = "stratuslab_libcloud._stratuslab")]
pub struct LocalCloudServer {
    cloud: Mutex<Option<LocalCloud>>,
}

fn service(name: &str) -> PyResult<Service> {
    Ok(match name {
        "compute" => Service::Compute,
        "pdisk" => Service::Pdisk,
        "marketplace" => Service::Marketplace,
        "any" => Service::Any,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown service '{other}' (compute, pdisk, marketplace, any)"
            )))
        }
    })
}

fn seconds(v: f64, what: &str) -> PyResult<Duration> {
    if v.is_finite() && v >= 0.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(PyValueError::new_err(format!("{what} must be ≥ 0 seconds")))
    }
}

impl LocalCloudServer {
    fn with<T>(&self, f: impl FnOnce(&LocalCloud) -> PyResult<T>) -> PyResult<T> {
        let guard = self
            .cloud
            .lock()
            .map_err(|_| PyRuntimeError::new_err("local cloud lock poisoned"))?;
        match guard.as_ref() {
            Some(c) => f(c),
            None => Err(PyRuntimeError::new_err("the local cloud is stopped")),
        }
    }
}

/// A bad option is the caller's, not a remote call's: its message stands alone (`ValueError`);
/// the local cloud's other failures (a busy port, TLS setup) carry its context.
fn lc<T>(r: Result<T, crate::localcloud::cloud::LocalCloudError>) -> Result<T, Error> {
    r.map_err(|e| match e.kind() {
        Kind::InvalidArgument => Error::invalid(e.to_string()),
        _ => Error::remote(
            crate::error::Context::new("localcloud", "127.0.0.1", "local cloud"),
            e,
        ),
    })
}

#[pymethods]
impl LocalCloudServer {
    #[new]
    #[pyo3(signature = (*, sites, users, version, boot_step, latency, tls, port, public_network, marketplace, site_type="stratuslab".to_owned(), site_options=Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        sites: Vec<String>,
        users: Vec<(String, String)>,
        version: String,
        boot_step: f64,
        latency: f64,
        tls: bool,
        port: u16,
        public_network: Option<(String, u32)>,
        marketplace: bool,
        site_type: String,
        site_options: Vec<(String, Option<String>, Option<String>)>,
    ) -> PyResult<Self> {
        let mut options = LocalCloudOptions {
            sites,
            users,
            version,
            boot_step: seconds(boot_step, "boot_step")?,
            latency: seconds(latency, "latency")?,
            tls,
            port,
            marketplace_seed: marketplace,
            site_type,
            site_options: site_options
                .into_iter()
                .map(|(site, version, site_type)| {
                    (
                        site,
                        crate::localcloud::cloud::SiteKnobs { version, site_type },
                    )
                })
                .collect(),
            ..LocalCloudOptions::default()
        };
        if let Some((first, count)) = public_network {
            let ip: Ipv4Addr = first
                .parse()
                .map_err(|_| PyValueError::new_err(format!("'{first}' is not an IPv4 address")))?;
            options.public_network = (ip, count);
        }
        let cloud = block(py, async move { lc(LocalCloud::start(options).await) })?;
        Ok(LocalCloudServer {
            cloud: Mutex::new(Some(cloud)),
        })
    }

    fn port(&self) -> PyResult<u16> {
        self.with(|c| Ok(c.port()))
    }

    fn base_url(&self) -> PyResult<String> {
        self.with(|c| Ok(c.base_url()))
    }

    fn config_text(&self) -> PyResult<String> {
        self.with(|c| Ok(c.config_text()))
    }

    fn ca_file(&self) -> PyResult<Option<String>> {
        self.with(|c| Ok(c.ca_pem_path().map(|p| p.to_string_lossy().into_owned())))
    }

    fn endpoints<'py>(&self, py: Python<'py>, site: String) -> PyResult<Bound<'py, PyDict>> {
        let e = self.with(|c| {
            c.endpoints(&site)
                .ok_or_else(|| PyValueError::new_err(format!("unknown site '{site}'")))
        })?;
        let d = PyDict::new(py);
        d.set_item("compute", e.compute)?;
        d.set_item("rpc2", e.rpc2)?;
        d.set_item("pdisk", e.pdisk)?;
        d.set_item("marketplace", e.marketplace)?;
        Ok(d)
    }

    fn issue_client_cert(&self, user: String) -> PyResult<(String, String)> {
        self.with(|c| {
            let (cert, key) = c
                .issue_client_cert(&user)
                .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
            Ok((
                cert.to_string_lossy().into_owned(),
                key.to_string_lossy().into_owned(),
            ))
        })
    }

    fn seed_vms(&self, py: Python<'_>, site: String, n: usize, owner: String) -> PyResult<()> {
        self.with(|c| run(py, || lc(c.seed_vms(&site, n, &owner)).map(|_| ())))
    }

    fn seed_volumes(&self, site: String, n: usize, owner: String) -> PyResult<()> {
        self.with(|c| {
            c.seed_volumes(&site, n, &owner)
                .map_err(|e| PyValueError::new_err(e.to_string()))
        })
    }

    fn seed_images(&self, n: usize) -> PyResult<()> {
        self.with(|c| {
            c.seed_images(n)
                .map_err(|e| PyValueError::new_err(e.to_string()))
        })
    }

    fn load_marketplace_document(&self, rdf: String) -> PyResult<String> {
        self.with(|c| {
            c.load_marketplace_document(&rdf)
                .map_err(|e| PyValueError::new_err(e.to_string()))
        })
    }

    fn set_clock(&self, unix_time: Option<i64>) -> PyResult<()> {
        self.with(|c| {
            c.set_clock(unix_time)
                .map_err(|e| PyRuntimeError::new_err(e.to_string()))
        })
    }

    fn vm_ids(&self, site: String) -> PyResult<Vec<i64>> {
        self.with(|c| Ok(c.vm_ids(&site)))
    }

    fn vm_state(&self, site: String, vm_id: i64) -> PyResult<Option<(i32, i32)>> {
        self.with(|c| Ok(c.vm_state(&site, vm_id)))
    }

    fn vm_template(&self, site: String, vm_id: i64) -> PyResult<Option<String>> {
        self.with(|c| Ok(c.vm_template(&site, vm_id)))
    }

    fn fail_vm(&self, site: String, vm_id: i64, message: String) -> PyResult<bool> {
        self.with(|c| {
            c.fail_vm(&site, vm_id, &message)
                .map_err(|e| PyValueError::new_err(e.to_string()))
        })
    }

    fn disks<'py>(&self, py: Python<'py>, site: String) -> PyResult<Bound<'py, PyList>> {
        let disks = self.with(|c| Ok(c.disks(&site)))?;
        let out = PyList::empty(py);
        for d in disks {
            let item = PyDict::new(py);
            item.set_item("uuid", &d.uuid)?;
            item.set_item("tag", &d.tag)?;
            item.set_item("owner", &d.owner)?;
            item.set_item("visibility", d.visibility.wire_name())?;
            item.set_item("type", &d.disk_type)?;
            item.set_item("identifier", &d.identifier)?;
            item.set_item("size", d.size)?;
            item.set_item("quarantine", &d.quarantine)?;
            let mounts = PyList::empty(py);
            for m in &d.mounts {
                let md = PyDict::new(py);
                md.set_item("vm_id", &m.vm_id)?;
                md.set_item("device", &m.device)?;
                md.set_item("node", &m.node)?;
                mounts.append(md)?;
            }
            item.set_item("mounts", mounts)?;
            out.append(item)?;
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (kind, site, service_name, op, status, seconds, code, message, size, times))]
    fn inject_fault(
        &self,
        kind: String,
        site: Option<String>,
        service_name: String,
        op: Option<String>,
        status: Option<u16>,
        seconds: Option<f64>,
        code: Option<i32>,
        message: Option<String>,
        size: Option<usize>,
        times: Option<u32>,
    ) -> PyResult<()> {
        let need = |what: &str| PyValueError::new_err(format!("fault '{kind}' needs {what}"));
        let kind = match kind.as_str() {
            "status" => FaultKind::Status(status.ok_or_else(|| need("status"))?),
            "malformed" => FaultKind::Malformed,
            "truncated" => FaultKind::Truncated,
            "drop" => FaultKind::Drop,
            "reset" => FaultKind::Reset,
            "slow" => FaultKind::Slow(self::seconds(
                seconds.ok_or_else(|| need("seconds"))?,
                "seconds",
            )?),
            "one_error" => FaultKind::OneError(
                code.ok_or_else(|| need("code"))?,
                message
                    .clone()
                    .unwrap_or_else(|| "[VirtualMachineAllocate] injected error".into()),
            ),
            "fault" => FaultKind::Fault(
                code.ok_or_else(|| need("code"))?,
                message.clone().unwrap_or_else(|| "injected fault".into()),
            ),
            "content_type" => FaultKind::WrongContentType,
            "huge" => FaultKind::HugeBody(size.ok_or_else(|| need("size"))?),
            "status_after" => FaultKind::StatusAfter(status.ok_or_else(|| need("status"))?),
            "drop_after" => FaultKind::DropAfter,
            "late" => FaultKind::Late(self::seconds(
                seconds.ok_or_else(|| need("seconds"))?,
                "seconds",
            )?),
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown fault kind '{other}'"
                )))
            }
        };
        let rule = FaultRule {
            site,
            service: service(&service_name)?,
            op,
            kind,
            times,
        };
        self.with(|c| {
            c.inject_fault(rule)
                .map_err(|e| PyRuntimeError::new_err(e.to_string()))
        })
    }

    fn clear_faults(&self) -> PyResult<()> {
        self.with(|c| {
            c.clear_faults()
                .map_err(|e| PyRuntimeError::new_err(e.to_string()))
        })
    }

    #[pyo3(signature = (site, service_name, op))]
    fn request_count(
        &self,
        site: Option<String>,
        service_name: String,
        op: Option<String>,
    ) -> PyResult<u64> {
        let svc = service(&service_name)?;
        self.with(|c| {
            Ok(c.request_count(
                site.as_deref().unwrap_or(""),
                svc,
                // No operation named: every operation.
                op.as_deref().unwrap_or("*"),
            ))
        })
    }

    fn dropped_count(&self) -> PyResult<u64> {
        self.with(|c| Ok(c.dropped_count()))
    }

    /// Stops serving and frees the port.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let cloud = self
            .cloud
            .lock()
            .map_err(|_| PyRuntimeError::new_err("local cloud lock poisoned"))?
            .take();
        if let Some(c) = cloud {
            block(py, async move {
                c.stop().await;
                Ok(())
            })?;
        }
        Ok(())
    }
}
