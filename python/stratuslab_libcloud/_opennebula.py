"""Plain OpenNebula sites (``site_type = opennebula``): images and templates from the daemon's
pools, volumes as persistent DATABLOCK images hot-plugged into VMs, virtual networks.

The driver's methods hand over to these functions when the location is a plain site; the Rust
core (``Core.opennebula()``) does the work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from libcloud.compute.base import NodeImage, StorageVolume
from libcloud.compute.types import StorageVolumeState

if TYPE_CHECKING:
    from .driver import StratusLabNodeDriver

SITE_TYPE = "opennebula"


class OpenNebulaNetwork:
    """A virtual network of a plain OpenNebula site (``ex_list_networks``).

    ``id`` is ``<vnet id>@<site>``; ``extra`` holds ``network_id``, ``owner``, ``bridge``,
    ``used_leases`` and ``address_ranges`` (``ar_id``, ``type``, ``ip``, ``mac``, ``size``).
    """

    def __init__(
        self, id: str, name: str, driver: StratusLabNodeDriver, extra: dict[str, Any]
    ) -> None:
        self.id = id
        self.name = name
        self.driver = driver
        self.extra = extra

    def __repr__(self) -> str:
        return f"<OpenNebulaNetwork id={self.id!r} name={self.name!r}>"


def is_plain(driver: StratusLabNodeDriver, site: str) -> bool:
    """Whether the site is a plain OpenNebula site."""
    return bool(driver._location(site).extra.get("site_type") == SITE_TYPE)


def site_of_id(driver: StratusLabNodeDriver, object_id: str) -> str | None:
    """The plain site an ``image-<n>@<site>``/``template-<n>@<site>`` id names, if any."""
    kind, _, rest = object_id.partition("-")
    site = rest.rpartition("@")[2] if "@" in rest else ""
    if kind not in ("image", "template") or not site:
        return None
    if not any(loc.id == site for loc in driver._locations):
        return None
    return site if is_plain(driver, site) else None


def list_images(driver: StratusLabNodeDriver, site: str) -> list[NodeImage]:
    return [driver._image_from(*rec) for rec in driver._core.opennebula().list_images(site)]


def get_image(driver: StratusLabNodeDriver, site: str, image_id: str) -> NodeImage:
    return driver._image_from(*driver._core.opennebula().get_image(site, image_id_of(image_id)))


def image_id_of(image_id: object) -> str:
    if not isinstance(image_id, str):
        raise TypeError(f"image_id must be a str, not {type(image_id).__name__}")
    return image_id


def to_volume(driver: StratusLabNodeDriver, rec: tuple[Any, ...]) -> StorageVolume:
    volume_id, name, size, state, extra = rec
    return StorageVolume(
        id=volume_id,
        name=name,
        size=size,
        driver=driver,
        state=StorageVolumeState(state),
        extra=extra,
    )


def list_volumes(
    driver: StratusLabNodeDriver, site: str | None, strict: bool
) -> tuple[list[StorageVolume], list[tuple[str, BaseException]]]:
    return volumes(driver, *driver._core.opennebula().list_volumes(site, strict))


def volumes(
    driver: StratusLabNodeDriver,
    records: list[tuple[Any, ...]],
    failures: list[tuple[str, BaseException]],
) -> tuple[list[StorageVolume], list[tuple[str, BaseException]]]:
    return [to_volume(driver, r) for r in records], failures


def create_volume(
    driver: StratusLabNodeDriver, site: str, size: int, name: str, datastore: str | int | None
) -> StorageVolume:
    ds = datastore_of(datastore)
    return to_volume(driver, driver._core.opennebula().create_volume(site, size, name, ds))


def datastore_of(datastore: str | int | None) -> str | None:
    return None if datastore is None else str(datastore)


def destroy_volume(driver: StratusLabNodeDriver, site: str, volume: StorageVolume) -> bool:
    driver._core.opennebula().destroy_volume(site, volume.id)
    return True


def attach_volume(
    driver: StratusLabNodeDriver,
    site: str,
    vm: int,
    volume: StorageVolume,
    device: str | None,
) -> bool:
    return attached(
        driver, volume, driver._core.opennebula().attach_volume(site, vm, volume.id, device)
    )


def attached(driver: StratusLabNodeDriver, volume: StorageVolume, rec: tuple[Any, ...]) -> bool:
    """Updates ``volume`` from the volume record an attach returned."""
    fresh = to_volume(driver, rec)
    volume.extra = fresh.extra
    volume.state = fresh.state
    return True


def detach_volume(driver: StratusLabNodeDriver, site: str, volume: StorageVolume) -> bool:
    driver._core.opennebula().detach_volume(site, volume.id)
    return detached(volume)


def detached(volume: StorageVolume) -> bool:
    """Updates ``volume`` once detached from every VM."""
    extra: dict[str, Any] = volume.extra if volume.extra is not None else {}
    volume.extra = extra
    for key in ("node", "disk_id", "device"):
        extra.pop(key, None)
    extra["attachments"] = []
    volume.state = StorageVolumeState.AVAILABLE
    return True


# ------------------------------------------------------------------ asyncio twins (aio.py)


async def list_images_async(driver: StratusLabNodeDriver, site: str) -> list[NodeImage]:
    records = await driver._core.opennebula().list_images_async(site)
    return [driver._image_from(*rec) for rec in records]


async def get_image_async(driver: StratusLabNodeDriver, site: str, image_id: str) -> NodeImage:
    rec = await driver._core.opennebula().get_image_async(site, image_id_of(image_id))
    return driver._image_from(*rec)


async def list_volumes_async(
    driver: StratusLabNodeDriver, site: str | None, strict: bool
) -> tuple[list[StorageVolume], list[tuple[str, BaseException]]]:
    return volumes(driver, *await driver._core.opennebula().list_volumes_async(site, strict))


async def create_volume_async(
    driver: StratusLabNodeDriver, site: str, size: int, name: str, datastore: str | int | None
) -> StorageVolume:
    plain = driver._core.opennebula()
    rec = await plain.create_volume_async(site, size, name, datastore_of(datastore))
    return to_volume(driver, rec)


async def destroy_volume_async(
    driver: StratusLabNodeDriver, site: str, volume: StorageVolume
) -> bool:
    await driver._core.opennebula().destroy_volume_async(site, volume.id)
    return True


async def attach_volume_async(
    driver: StratusLabNodeDriver,
    site: str,
    vm: int,
    volume: StorageVolume,
    device: str | None,
) -> bool:
    rec = await driver._core.opennebula().attach_volume_async(site, vm, volume.id, device)
    return attached(driver, volume, rec)


async def detach_volume_async(
    driver: StratusLabNodeDriver, site: str, volume: StorageVolume
) -> bool:
    await driver._core.opennebula().detach_volume_async(site, volume.id)
    return detached(volume)


def list_networks(
    driver: StratusLabNodeDriver, site: str | None, strict: bool
) -> tuple[list[OpenNebulaNetwork], list[tuple[str, BaseException]]]:
    records, failures = driver._core.opennebula().list_networks(site, strict)
    return [OpenNebulaNetwork(i, n, driver, e) for (i, n, e) in records], failures
