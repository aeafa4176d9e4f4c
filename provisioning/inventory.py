"""The Ansible side of a unit: `inventory/<ID>.yml` (the host in group cctv_units) and
`inventory/host_vars/<ID>/` (vars.yml in clear, vault.yml encrypted with ansible-vault).

Files are written whole or not at all (a temporary folder renamed into place); the vault password
is checked against an existing vault before anything is written, so a wrong one changes nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from provisioning.settings import ProvisionError

GROUP = "cctv_units"
VAULT_HEADER = b"$ANSIBLE_VAULT;"


def _vault(password: str) -> Any:
    try:
        from ansible.constants import DEFAULT_VAULT_ID_MATCH
        from ansible.parsing.vault import VaultLib, VaultSecret
    except ImportError:  # pragma: no cover - the provisioning extra installs ansible
        raise ProvisionError("ansible is not installed (pip install 'mobile-cctv[provisioning]')") from None
    return VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(password.encode("utf-8")))])


def encrypt(password: str, data: dict[str, Any]) -> bytes:
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    return _vault(password).encrypt(text.encode("utf-8"))


def decrypt(password: str, blob: bytes, where: Path) -> dict[str, Any]:
    from ansible.errors import AnsibleError

    try:
        plain = _vault(password).decrypt(blob)
    except AnsibleError:
        raise ProvisionError(f"wrong vault password: it does not open {where}") from None
    return yaml.safe_load(plain) or {}


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class UnitSecrets:
    s3_access_key_id: str
    s3_secret_access_key: str
    status_token: str
    signing_key_pem: str
    s3_previous_access_key_id: str = ""

    def to_vault(self) -> dict[str, str]:
        return {
            "vault_cctv_s3_access_key_id": self.s3_access_key_id,
            "vault_cctv_s3_secret_access_key": self.s3_secret_access_key,
            "vault_cctv_status_token": self.status_token,
            "vault_cctv_signing_key": self.signing_key_pem,
        }

    @classmethod
    def from_vault(cls, data: dict[str, Any]) -> UnitSecrets:
        return cls(data["vault_cctv_s3_access_key_id"], data["vault_cctv_s3_secret_access_key"],
                   data["vault_cctv_status_token"], data["vault_cctv_signing_key"])


class Inventory:
    def __init__(self, root: Path, password: str) -> None:
        self.root, self.password = root, password

    def host_vars(self, unit_id: str) -> Path:
        return self.root / "host_vars" / unit_id

    def host_file(self, unit_id: str) -> Path:
        return self.root / f"{unit_id}.yml"

    def has(self, unit_id: str) -> bool:
        return self.host_vars(unit_id).exists() or self.host_file(unit_id).exists()

    def vaults(self) -> list[Path]:
        found = [*sorted(self.root.glob("group_vars/*/vault.yml")),
                 *sorted(self.root.glob("host_vars/*/vault.yml"))]
        return [p for p in found if p.is_file()]

    def check_password(self) -> None:
        """Open one existing vault with the password (none yet: this password starts the inventory)."""
        if not self.root.is_dir():
            raise ProvisionError(f"no Ansible inventory at {self.root} (set CCTV_PROVISION_INVENTORY)")
        for path in self.vaults():
            blob = path.read_bytes()
            if blob.startswith(VAULT_HEADER):
                decrypt(self.password, blob, path)
                return

    def write_unit(self, unit_id: str, plain: dict[str, Any], secrets: UnitSecrets) -> None:
        """host_vars/<ID>/{vars,vault}.yml, then <ID>.yml; all or nothing."""
        try:
            self._write_unit(unit_id, plain, secrets)
        except OSError as exc:
            raise ProvisionError(f"cannot write the inventory at {exc.filename or self.root}: "
                                 f"{exc.strerror or exc}") from None

    def _write_unit(self, unit_id: str, plain: dict[str, Any], secrets: UnitSecrets) -> None:
        if self.has(unit_id):
            raise ProvisionError(f"unit {unit_id!r} is already in the inventory ({self.host_vars(unit_id)})")
        parent = self.root / "host_vars"
        parent.mkdir(exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{unit_id}."))
        try:
            tmp.chmod(0o700)
            header = f"# {unit_id}: written by cctv-provision; secrets are in vault.yml (ansible-vault)\n"
            (tmp / "vars.yml").write_text(header + yaml.safe_dump(plain, sort_keys=False))
            (tmp / "vault.yml").write_bytes(encrypt(self.password, secrets.to_vault()))
            (tmp / "vault.yml").chmod(0o600)
            os.rename(tmp, self.host_vars(unit_id))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            host = {GROUP: {"hosts": {unit_id: {"ansible_host": plain.get("cctv_ansible_host", unit_id)}}}}
            _write_atomic(self.host_file(unit_id), yaml.safe_dump(host, sort_keys=False).encode(), 0o644)
        except BaseException:
            shutil.rmtree(self.host_vars(unit_id), ignore_errors=True)
            raise

    def read_secrets(self, unit_id: str) -> UnitSecrets:
        path = self.host_vars(unit_id) / "vault.yml"
        try:
            blob = path.read_bytes()
        except OSError:
            raise ProvisionError(f"unit {unit_id!r} has no vault in the inventory ({path})") from None
        return UnitSecrets.from_vault(decrypt(self.password, blob, path))

    def replace_secrets(self, unit_id: str, secrets: UnitSecrets, plain_updates: dict[str, Any]) -> None:
        hv = self.host_vars(unit_id)
        _write_atomic(hv / "vault.yml", encrypt(self.password, secrets.to_vault()), 0o600)
        plain = yaml.safe_load((hv / "vars.yml").read_text()) or {}
        plain.update(plain_updates)
        header = f"# {unit_id}: written by cctv-provision; secrets are in vault.yml (ansible-vault)\n"
        _write_atomic(hv / "vars.yml", (header + yaml.safe_dump(plain, sort_keys=False)).encode(), 0o644)

    def remove_unit(self, unit_id: str) -> None:
        self.host_file(unit_id).unlink(missing_ok=True)
        shutil.rmtree(self.host_vars(unit_id), ignore_errors=True)
