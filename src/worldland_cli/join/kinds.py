"""Every action kind beyond :mod:`.actions`, imported so the journal can read them back.

``reset`` rebuilds each journaled action from its ``kind``; a kind defined in a module the
reset process never imported would be unknown to it. The journal imports this module.
"""

from __future__ import annotations

from worldland_cli.join import kubeadm, register, units, wireguard

__all__ = ["kubeadm", "register", "units", "wireguard"]
