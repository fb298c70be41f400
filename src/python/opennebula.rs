//! `PlainSites`: what the driver does on plain OpenNebula sites (`site_type = opennebula`)
//! besides compute: images and templates, volumes (persistent DATABLOCK images), networks.
//! Obtained from `Core.opennebula()`; shares the core's driver. Every network call releases
//! the GIL.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use pyo3::IntoPyObjectExt;

use super::core::Failures;
use super::errors::{block, to_py};
use crate::driver::{by_site, Driver, PlainImage, PlainVolume};
use crate::one::pools::{self, NetworkRecord};

type ImageTuple<'py> = (String, String, Bound<'py, PyDict>);
type VolumeTuple<'py> = (String, String, u64, &'static str, Bound<'py, PyDict>);
type NetworkTuple<'py> = (String, String, Bound<'py, PyDict>);

#[pyclass(frozen, module = "stratuslab_libcloud._stratuslab")]
pub struct PlainSites {
    pub(super) driver: Arc<Driver>,
}

/// `(id, name, extra)` of an image or a template.
fn image<'py>(py: Python<'py>, image: &PlainImage) -> PyResult<ImageTuple<'py>> {
    let extra = PyDict::new(py);
    let id = image.id();
    match image {
        PlainImage::Image { site, image } => {
            extra.set_item("kind", "image")?;
            extra.set_item("location", site)?;
            extra.set_item("image_id", image.id)?;
            extra.set_item("owner", &image.uname)?;
            extra.set_item("type", pools::image_type_name(image.kind))?;
            extra.set_item("state", pools::image_state_name(image.state))?;
            extra.set_item("persistent", image.persistent)?;
            extra.set_item("size_mib", image.size_mib)?;
            extra.set_item("datastore", &image.datastore)?;
            extra.set_item("datastore_id", image.datastore_id)?;
            extra.set_item("running_vms", image.running_vms)?;
            extra.set_item("registered", image.regtime)?;
            extra.set_item("description", image.attribute("DESCRIPTION"))?;
            extra.set_item("os", image.attribute("OS").or(image.attribute("OS_TYPE")))?;
            extra.set_item("arch", image.attribute("ARCH"))?;
            extra.set_item("dev_prefix", image.attribute("DEV_PREFIX"))?;
            Ok((id, image.name.clone(), extra))
        }
        PlainImage::Template { site, template } => {
            extra.set_item("kind", "template")?;
            extra.set_item("location", site)?;
            extra.set_item("template_id", template.id)?;
            extra.set_item("owner", &template.uname)?;
            extra.set_item("cpu", template.cpu.as_deref())?;
            extra.set_item("vcpu", template.vcpu.as_deref())?;
            extra.set_item("memory_mib", template.memory.as_deref())?;
            extra.set_item("description", template.description.as_deref())?;
            extra.set_item("arch", template.arch.as_deref())?;
            extra.set_item("os", py.None())?;
            extra.set_item("disk_images", template.disk_images.clone())?;
            extra.set_item("networks", template.nic_networks.clone())?;
            extra.set_item("registered", template.regtime)?;
            Ok((id, template.name.clone(), extra))
        }
    }
}

/// `(id, name, size GiB, state, extra)` of a volume.
fn volume<'py>(py: Python<'py>, v: PlainVolume) -> PyResult<VolumeTuple<'py>> {
    let extra = PyDict::new(py);
    let id = v.id();
    let i = &v.image;
    extra.set_item("location", &v.site)?;
    extra.set_item("image_id", i.id)?;
    extra.set_item("owner", &i.uname)?;
    extra.set_item("datastore", &i.datastore)?;
    extra.set_item("datastore_id", i.datastore_id)?;
    extra.set_item("size_mib", i.size_mib)?;
    extra.set_item("image_state", pools::image_state_name(i.state))?;
    let attachments: Vec<(String, i64, Option<String>)> = v
        .attachments
        .iter()
        .map(|(vm, d)| (format!("{vm}@{}", v.site), d.disk_id, d.target.clone()))
        .collect();
    if let Some((node, disk_id, target)) = attachments.first() {
        extra.set_item("node", node)?;
        extra.set_item("disk_id", disk_id)?;
        extra.set_item("device", target.as_deref())?;
    }
    extra.set_item("attachments", attachments)?;
    // READY 1, USED(_PERS) 2/8, LOCKED 4, ERROR 5, DELETE 7 (include/Image.h).
    let state = match i.state {
        _ if !i.vms.is_empty() => "inuse",
        1 => "available",
        2 | 8 | 9 | 10 => "inuse",
        0 | 4 | 6 => "creating",
        5 => "error",
        7 => "deleting",
        _ => "unknown",
    };
    let size = i.size_mib.div_ceil(1024);
    Ok((id, i.name.clone(), size, state, extra))
}

fn network<'py>(py: Python<'py>, site: &str, n: NetworkRecord) -> PyResult<NetworkTuple<'py>> {
    let extra = PyDict::new(py);
    extra.set_item("location", site)?;
    extra.set_item("network_id", n.id)?;
    extra.set_item("owner", &n.uname)?;
    extra.set_item("bridge", n.bridge.as_deref())?;
    extra.set_item("used_leases", n.used_leases)?;
    let ranges = PyList::empty(py);
    for ar in &n.ranges {
        let d = PyDict::new(py);
        d.set_item("ar_id", ar.ar_id)?;
        d.set_item("type", &ar.kind)?;
        d.set_item("ip", ar.ip.as_deref())?;
        d.set_item("mac", ar.mac.as_deref())?;
        d.set_item("size", ar.size)?;
        ranges.append(d)?;
    }
    extra.set_item("address_ranges", ranges)?;
    Ok((format!("{}@{site}", n.id), n.name, extra))
}

/// Per-site results as the driver core flattens them ([`by_site`]), each item converted with
/// its site's name; the failed sites, or the first failure raised when `strict`.
fn per_site<'py, R, T>(
    py: Python<'py>,
    results: Vec<(String, crate::error::Result<Vec<R>>)>,
    strict: bool,
    mut convert: impl FnMut(Python<'py>, &str, R) -> PyResult<T>,
) -> PyResult<(Vec<T>, Failures<'py>)> {
    let named = results
        .into_iter()
        .map(|(site, result)| {
            let items = result.map(|items| {
                let named: Vec<(String, R)> =
                    items.into_iter().map(|r| (site.clone(), r)).collect();
                named
            });
            (site, items)
        })
        .collect();
    let listed = by_site(named, strict).map_err(|e| to_py(py, &e))?;
    let items = listed
        .items
        .into_iter()
        .map(|(site, r)| convert(py, &site, r))
        .collect::<PyResult<Vec<T>>>()?;
    Ok((items, super::core::failures(py, listed.failures)))
}

#[pymethods]
impl PlainSites {
    /// READY OS images then VM templates of a plain site: `[(id, name, extra)]`.
    fn list_images<'py>(&self, py: Python<'py>, site: String) -> PyResult<Vec<ImageTuple<'py>>> {
        let driver = Arc::clone(&self.driver);
        let images = block(py, async move { driver.plain_list_images(&site).await })?;
        images.iter().map(|i| image(py, i)).collect()
    }

    fn get_image<'py>(
        &self,
        py: Python<'py>,
        site: String,
        image_id: String,
    ) -> PyResult<ImageTuple<'py>> {
        let driver = Arc::clone(&self.driver);
        let i = block(
            py,
            async move { driver.plain_get_image(&site, &image_id).await },
        )?;
        image(py, &i)
    }

    #[pyo3(signature = (site, strict))]
    fn list_networks<'py>(
        &self,
        py: Python<'py>,
        site: Option<String>,
        strict: bool,
    ) -> PyResult<(Vec<NetworkTuple<'py>>, Failures<'py>)> {
        let driver = Arc::clone(&self.driver);
        let results = block(py, async move {
            driver.plain_list_networks(site.as_deref()).await
        })?;
        per_site(py, results, strict, network)
    }

    #[pyo3(signature = (site, strict))]
    fn list_volumes<'py>(
        &self,
        py: Python<'py>,
        site: Option<String>,
        strict: bool,
    ) -> PyResult<(Vec<VolumeTuple<'py>>, Failures<'py>)> {
        let driver = Arc::clone(&self.driver);
        let results = block(py, async move {
            driver.plain_list_volumes(site.as_deref()).await
        })?;
        per_site(py, results, strict, |py, _, v| volume(py, v))
    }

    #[pyo3(signature = (site, size, name, datastore))]
    fn create_volume<'py>(
        &self,
        py: Python<'py>,
        site: String,
        size: i64,
        name: String,
        datastore: Option<String>,
    ) -> PyResult<VolumeTuple<'py>> {
        let driver = Arc::clone(&self.driver);
        let v = block(py, async move {
            driver
                .plain_create_volume(&site, size, &name, datastore.as_deref())
                .await
        })?;
        volume(py, v)
    }

    fn destroy_volume(&self, py: Python<'_>, site: String, volume_id: String) -> PyResult<()> {
        let driver = Arc::clone(&self.driver);
        block(py, async move {
            driver.plain_destroy_volume(&site, &volume_id).await
        })
    }

    #[pyo3(signature = (site, vm_id, volume_id, device))]
    fn attach_volume<'py>(
        &self,
        py: Python<'py>,
        site: String,
        vm_id: i64,
        volume_id: String,
        device: Option<String>,
    ) -> PyResult<VolumeTuple<'py>> {
        let driver = Arc::clone(&self.driver);
        let v = block(py, async move {
            driver
                .plain_attach_volume(&site, vm_id, &volume_id, device.as_deref())
                .await
        })?;
        volume(py, v)
    }

    /// `[(vm id, disk id)]` detached.
    fn detach_volume(
        &self,
        py: Python<'_>,
        site: String,
        volume_id: String,
    ) -> PyResult<Vec<(i64, i64)>> {
        let driver = Arc::clone(&self.driver);
        block(py, async move {
            driver.plain_detach_volume(&site, &volume_id).await
        })
    }

    // ------------------------------------------------------------ asyncio twins
    // Each returns an asyncio awaitable ([`super::aio::awaitable`]) of what the synchronous
    // method of the same name (without `_async`) returns.

    fn list_images_async<'py>(&self, py: Python<'py>, site: String) -> PyResult<Bound<'py, PyAny>> {
        let driver = Arc::clone(&self.driver);
        super::aio::awaitable(
            py,
            async move { driver.plain_list_images(&site).await },
            |py, images| {
                images
                    .iter()
                    .map(|i| image(py, i))
                    .collect::<PyResult<Vec<_>>>()?
                    .into_py_any(py)
            },
        )
    }

    fn get_image_async<'py>(
        &self,
        py: Python<'py>,
        site: String,
        image_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let driver = Arc::clone(&self.driver);
        super::aio::awaitable(
            py,
            async move { driver.plain_get_image(&site, &image_id).await },
            |py, i| image(py, &i)?.into_py_any(py),
        )
    }

    #[pyo3(signature = (site, strict))]
    fn list_volumes_async<'py>(
        &self,
        py: Python<'py>,
        site: Option<String>,
        strict: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let driver = Arc::clone(&self.driver);
        super::aio::awaitable(
            py,
            async move { driver.plain_list_volumes(site.as_deref()).await },
            move |py, results| {
                per_site(py, results, strict, |py, _, v| volume(py, v))?.into_py_any(py)
            },
        )
    }

    #[pyo3(signature = (site, size, name, datastore))]
    fn create_volume_async<'py>(
        &self,
        py: Python<'py>,
        site: String,
        size: i64,
        name: String,
        datastore: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let driver = Arc::clone(&self.driver);
        super::aio::awaitable(
            py,
            async move {
                driver
                    .plain_create_volume(&site, size, &name, datastore.as_deref())
                    .await
            },
            |py, v| volume(py, v)?.into_py_any(py),
        )
    }

    fn destroy_volume_async<'py>(
        &self,
        py: Python<'py>,
        site: String,
        volume_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let driver = Arc::clone(&self.driver);
        super::aio::awaitable(
            py,
            async move { driver.plain_destroy_volume(&site, &volume_id).await },
            |py, ()| Ok(py.None()),
        )
    }

    #[pyo3(signature = (site, vm_id, volume_id, device))]
    fn attach_volume_async<'py>(
        &self,
        py: Python<'py>,
        site: String,
        vm_id: i64,
        volume_id: String,
        device: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let driver = Arc::clone(&self.driver);
        super::aio::awaitable(
            py,
            async move {
                driver
                    .plain_attach_volume(&site, vm_id, &volume_id, device.as_deref())
                    .await
            },
            |py, v| volume(py, v)?.into_py_any(py),
        )
    }

    fn detach_volume_async<'py>(
        &self,
        py: Python<'py>,
        site: String,
        volume_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let driver = Arc::clone(&self.driver);
        super::aio::awaitable(
            py,
            async move { driver.plain_detach_volume(&site, &volume_id).await },
            |py, detached| detached.into_py_any(py),
        )
    }
}
