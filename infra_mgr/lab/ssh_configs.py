"""Running configurations of the lab's devices, as each platform prints them over SSH.

Built from the city model (hostname, site, interfaces with their descriptions, plan addresses),
so what the backup stores agrees with what SNMP and the CLI say about the same device. Every
configuration carries the kinds of secret a real one does (enable secret, user passwords, SNMP
communities, SSH public keys, IKE pre-shared keys, RADIUS/TACACS keys, Junos ``$9$``/``$6$``
strings, RouterOS ``password=``/``secret=``), so the masking has something real to remove.

Most devices follow the city's baseline (NTP and syslog servers, SSH v2 only, no telnet, a login
banner, a non-default community); :data:`BASELINE_BREAKS` names the few that break one rule
each, so a compliance test knows exactly which device must be reported for what.

A *generation* (0, 1, 2 …) is a revision of the configuration: each one changes one real line
(a static route and an interface description), never only a timestamp.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from infra_mgr.lab.city_model import Device

NTP_SERVERS = ("10.10.0.1", "10.10.0.2")
SYSLOG_SERVER = "10.10.0.20"
RADIUS_SERVER = "10.10.0.30"
TACACS_SERVER = "10.10.0.31"
BASELINE_COMMUNITY = "jed-noc-ro"  # the estate's read-only community (never public/private)
BANNER = "Authorised access only - Jeddah Municipality IT. Activity is logged."
DOMAIN = "jeddah.example"

# rule -> the device that breaks it (one each); every other device keeps the baseline
BASELINE_BREAKS: dict[str, str] = {
    "snmp_community_public": "jed-b01-sw",
    "snmp_community_private": "jed-b03-rtr",
    "telnet_enabled": "jed-b09-rtr",
    "no_banner": "jed-b11-sw",
    "no_ntp": "jed-b17-rtr",
    "no_syslog": "jed-b13-rtr",
    "ssh_v1": "jed-b25-sw",
}


@dataclass(frozen=True)
class Baseline:
    """What one device's configuration holds of the baseline (a break turns one field off)."""

    community: str = BASELINE_COMMUNITY
    telnet: bool = False
    banner: bool = True
    ntp: bool = True
    syslog: bool = True
    ssh_version: int = 2


def baseline_of(hostname: str) -> Baseline:
    """The baseline as this device keeps it (:data:`BASELINE_BREAKS` decides the exceptions)."""
    broken = {rule for rule, host in BASELINE_BREAKS.items() if host == hostname}
    return Baseline(
        community="public" if "snmp_community_public" in broken
        else "private" if "snmp_community_private" in broken else BASELINE_COMMUNITY,
        telnet="telnet_enabled" in broken,
        banner="no_banner" not in broken,
        ntp="no_ntp" not in broken,
        syslog="no_syslog" not in broken,
        ssh_version=1 if "ssh_v1" in broken else 2,
    )


def _secret(hostname: str, kind: str, length: int = 22) -> str:
    """A stable, device-specific secret-looking string (the lab's secrets are invented)."""
    digest = hashlib.sha256(f"jeddah-lab:{hostname}:{kind}".encode()).digest()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789./"
    return "".join(alphabet[b % len(alphabet)] for b in (digest * 2)[:length])


def _pubkey(hostname: str) -> str:
    body = hashlib.sha512(f"jeddah-lab-key:{hostname}".encode()).hexdigest().upper()
    return "AAAAB3NzaC1yc2EAAAADAQABAAABAQ" + body[:96]


def _route(generation: int) -> str:
    """The line a generation changes: a static route to a branch project subnet."""
    return f"10.{200 + generation % 50}.{generation // 50 % 250}.0"


def _octets(hostname: str) -> tuple[int, int]:
    digest = hashlib.sha256(hostname.encode()).digest()
    return digest[0] % 250 + 1, digest[1] % 250 + 1


def _description(device: Device, name: str, alias: str, generation: int, first_port: str) -> str:
    """ifAlias as the description; a generation also re-labels the device's first port."""
    if name == first_port and generation:
        return f"{alias or 'port'} (rev {generation})"
    return alias


def _first_port(device: Device) -> str:
    ports = [i for i in device.interfaces if i.port]
    return ports[0].name if ports else ""


def _plan(device: Device) -> dict[str, tuple[str, str]]:
    """Interface role -> (address, mask) from the site plan, plus the management loopback."""
    out = {role: (address, mask) for address, mask, role in device.plan_addresses}
    out.setdefault("mgmt", (device.address, "255.255.255.255"))
    return out


# --- Cisco IOS / IOS-XE ---------------------------------------------------------------------------


def cisco_config(device: Device, generation: int = 0) -> str:
    """``show running-config`` of a Cisco IOS or IOS-XE device."""
    h = device.hostname
    base = baseline_of(h)
    plan = _plan(device)
    first = _first_port(device)
    version = device.platform.os_version
    short = ".".join(version.split(".")[:2]) if device.platform.key == "ios-xe" else version.split("(")[0]
    lines = [
        "Building configuration...",
        "",
        f"Current configuration : {9000 + len(device.interfaces) * 120 + generation} bytes",
        "!",
        f"! Last configuration change at 0{generation % 10}:1{generation % 6}:00 AST Mon Jan 1 2024 by netops",
        "!",
        f"version {short}",
        "service timestamps debug datetime msec",
        "service timestamps log datetime msec localtime show-timezone",
        "service password-encryption",
        "!",
        f"hostname {h}",
        "!",
        "boot-start-marker",
        "boot-end-marker",
        "!",
        "logging buffered 64000 informational",
        f"enable secret 9 $9${_secret(h, 'enable-salt', 14)}${_secret(h, 'enable', 43)}",
        "!",
        "aaa new-model",
        "aaa group server tacacs+ JED-TACACS",
        " server name JED-TAC1",
        "aaa authentication login default group JED-TACACS local",
        "aaa authorization exec default group JED-TACACS local",
        "aaa accounting commands 15 default start-stop group JED-TACACS",
        "!",
        "clock timezone AST 3 0",
        f"ip domain name {DOMAIN}",
        "ip name-server 10.10.0.53",
        "no ip http server",
        "no ip http secure-server",
        "!",
        f"username netops privilege 15 secret 9 $9${_secret(h, 'netops-salt', 14)}${_secret(h, 'netops', 43)}",
        f"username backup privilege 1 password 7 {_secret(h, 'backup-7', 18).encode().hex().upper()[:22]}",
        "!",
    ]
    if device.role == "wan-router":
        lines += [
            "crypto isakmp policy 10",
            " encr aes 256",
            " hash sha256",
            " authentication pre-share",
            " group 14",
            f"crypto isakmp key {_secret(h, 'psk', 20)} address 10.255.0.1",
            "!",
        ]
    lines += [f"ip ssh version {base.ssh_version}", "ip ssh time-out 60", "ip ssh pubkey-chain",
              "  username netops", "   key-string", f"    {_pubkey(h)[:72]}", f"    {_pubkey(h)[72:]}",
              "   exit", "!"]
    for iface in device.interfaces:
        if iface.role == "unit":
            continue
        lines.append(f"interface {iface.descr}")
        desc = _description(device, iface.name, iface.alias, generation, first)
        if desc:
            lines.append(f" description {desc}")
        if iface.role in plan:
            address, mask = plan[iface.role]
            lines.append(f" ip address {address} {mask}")
        elif iface.role == "access":
            lines += [" switchport access vlan 10", " switchport mode access", " spanning-tree portfast"]
        elif iface.role in ("uplink", "downlink", "fabric"):
            lines.append(" switchport mode trunk")
        elif iface.role == "null":
            lines.append(" no ip unreachables")
        else:
            lines.append(" no ip address")
        if not iface.admin_up:
            lines.append(" shutdown")
        lines.append("!")
    lines += ["ip forward-protocol nd", f"ip route 0.0.0.0 0.0.0.0 10.{_octets(h)[0]}.0.1",
              f"ip route {_route(generation)} 255.255.255.0 Null0 name project-{generation}",
              "!", "ip access-list standard SNMP-RO", " permit 10.10.0.0 0.0.0.255", "!"]
    lines.append(f"snmp-server community {base.community} RO SNMP-RO")
    lines += [f"snmp-server location Jeddah {device.site}", "snmp-server contact noc@jeddah.example",
              f"snmp-server user jed-noc-v3 JED-V3 v3 auth sha {_secret(h, 'v3a', 16)} priv aes 128 "
              f"{_secret(h, 'v3p', 16)}", "snmp-server enable traps config"]
    if base.syslog:
        lines += ["logging trap informational", f"logging host {SYSLOG_SERVER}"]
    tac7 = _secret(h, "tac", 16).encode().hex().upper()[:24]
    lines += ["tacacs server JED-TAC1", f" address ipv4 {TACACS_SERVER}", f" key 7 {tac7}",
              "radius server JED-RAD1", f" address ipv4 {RADIUS_SERVER} auth-port 1812 acct-port 1813",
              f" key {_secret(h, 'radius', 18)}", "!"]
    if base.banner:
        lines += [f"banner login ^C{BANNER}^C", "!"]
    transport = "ssh telnet" if base.telnet else "ssh"
    lines += ["line con 0", " exec-timeout 5 0", " logging synchronous", "line vty 0 4",
              " exec-timeout 10 0", f" transport input {transport}", "line vty 5 15", f" transport input {transport}",
              "!"]
    if base.ntp:
        lines += [f"ntp server {NTP_SERVERS[0]} prefer", f"ntp server {NTP_SERVERS[1]}"]
    lines += ["!", "end", ""]
    return "\n".join(lines)


# --- Juniper Junos --------------------------------------------------------------------------------


def junos_config(device: Device, generation: int = 0) -> str:
    """``show configuration`` of a Junos device (hierarchical, as the CLI prints it)."""
    h = device.hostname
    base = baseline_of(h)
    plan = _plan(device)
    first = _first_port(device)
    nine = "$9$" + _secret(h, "junos9", 24)
    lines = [
        f"## Last commit: 2024-01-0{generation % 9 + 1} 0{generation % 10}:00:00 AST by netops",
        f"version {device.platform.os_version};",
        "system {",
        f"    host-name {h};",
        f"    domain-name {DOMAIN};",
        "    time-zone Asia/Riyadh;",
        "    root-authentication {",
        f'        encrypted-password "$6${_secret(h, "root-salt", 8)}${_secret(h, "root", 60)}"; ## SECRET-DATA',
        "    }",
        f"    radius-server {{\n        {RADIUS_SERVER} secret \"{nine}\"; ## SECRET-DATA\n    }}",
        "    login {",
    ]
    if base.banner:
        lines.append(f'        message "{BANNER}";')
    lines += [
        "        user netops {",
        "            uid 2001;",
        "            class super-user;",
        "            authentication {",
        f'                encrypted-password "$6${_secret(h, "user-salt", 8)}${_secret(h, "user", 60)}"; '
        "## SECRET-DATA",
        f'                ssh-rsa "ssh-rsa {_pubkey(h)} netops@noc"; ## SECRET-DATA',
        "            }",
        "        }",
        "    }",
        "    services {",
        "        ssh {",
        f"            protocol-version v{base.ssh_version};",
        "        }",
    ]
    if base.telnet:
        lines.append("        telnet;")
    lines += ["        netconf {", "            ssh;", "        }", "    }"]
    if base.syslog:
        lines += ["    syslog {", f"        host {SYSLOG_SERVER} {{", "            any notice;",
                  "            authorization info;", "        }", "        file messages {", "            any notice;",
                  "        }", "    }"]
    if base.ntp:
        lines += ["    ntp {"] + [f"        server {s};" for s in NTP_SERVERS] + ["    }"]
    lines += ["}", "interfaces {"]
    for iface in device.interfaces:
        if iface.role in ("unit",) or iface.if_type == 24:
            continue
        desc = _description(device, iface.name, iface.alias, generation, first)
        lines.append(f"    {iface.name} {{")
        if not iface.admin_up:
            lines.append("        disable;")
        if desc:
            lines.append(f'        description "{desc}";')
        if iface.role in plan:
            address, mask = plan[iface.role]
            bits = sum(bin(int(o)).count("1") for o in mask.split("."))
            lines += ["        unit 0 {", "            family inet {", f"                address {address}/{bits};",
                      "            }", "        }"]
        elif iface.port and iface.peer is not None:
            lines += ["        unit 0 {", "            family ethernet-switching;", "        }"]
        lines.append("    }")
    lines += ["}", "snmp {", f'    location "Jeddah {device.site}";', "    contact \"noc@jeddah.example\";",
              f"    community {base.community} {{", "        authorization read-only;", "    }", "}",
              "routing-options {", "    static {", f"        route 0.0.0.0/0 next-hop 10.{_octets(h)[0]}.0.1;",
              f"        route {_route(generation)}/24 discard;", "    }", "}"]
    if device.role == "wan-router":
        lines += ["security {", "    ike {", "        policy JED-HQ {", "            mode main;",
                  f'            pre-shared-key ascii-text "{"$9$" + _secret(h, "ike9", 30)}"; ## SECRET-DATA',
                  "        }", "    }", "}"]
    lines += ["protocols {", "    lldp {", "        interface all;", "    }", "}", ""]
    return "\n".join(lines)


# --- MikroTik RouterOS ----------------------------------------------------------------------------


def routeros_config(device: Device, generation: int = 0) -> str:
    """``/export show-sensitive`` of a RouterOS device (v7 syntax)."""
    h = device.hostname
    base = baseline_of(h)
    plan = _plan(device)
    first = _first_port(device)
    lines = [
        f"# 2024-01-0{generation % 9 + 1} 0{generation % 10}:00:00 by RouterOS {device.platform.os_version}",
        f"# software id = {_secret(h, 'swid', 4).upper()}-{_secret(h, 'swid2', 4).upper()}",
        "#",
        f"# model = {device.model.model}",
        f"# serial number = {device.serial}",
        "/interface ethernet",
    ]
    for iface in device.interfaces:
        if not iface.port:
            continue
        desc = _description(device, iface.name, iface.alias, generation, first)
        comment = f' comment="{desc}"' if desc else ""
        disabled = " disabled=yes" if not iface.admin_up else ""
        lines.append(f"set [ find default-name={iface.name} ]{comment}{disabled}")
    lines += ["/ip address"]
    for role, (address, mask) in sorted(_plan(device).items()):
        bits = sum(bin(int(o)).count("1") for o in mask.split("."))
        target = next((i.name for i in device.interfaces if i.role == role), "bridge")
        lines.append(f"add address={address}/{bits} interface={target}")
    lines += [
        "/ip ipsec peer",
        "add address=10.255.0.1/32 name=jed-hq exchange-mode=ike2",
        "/ip ipsec identity",
        f'add peer=jed-hq secret="{_secret(h, "psk", 20)}"',
        "/ip route",
        f"add dst-address=0.0.0.0/0 gateway=10.{_octets(h)[0]}.0.1",
        f"add dst-address={_route(generation)}/24 blackhole comment=project-{generation}",
        "/ip service",
        f"set telnet disabled={'no' if base.telnet else 'yes'}",
        "set ftp disabled=yes",
        "set www disabled=yes",
        "set ssh port=22",
        "/ip ssh",
        f"set strong-crypto={'yes' if base.ssh_version == 2 else 'no'}",
        "/radius",
        f'add address={RADIUS_SERVER} secret="{_secret(h, "radius", 18)}" service=login',
        "/snmp community",
        "set [ find default=yes ] disabled=yes",
        f"add addresses=10.10.0.0/24 name={base.community}",
        "/snmp",
        f'set contact=noc@jeddah.example enabled=yes location="Jeddah {device.site}"',
        "/system identity",
        f"set name={h}",
    ]
    if base.syslog:
        lines += ["/system logging action", f"add name=jedsyslog remote={SYSLOG_SERVER} target=remote",
                  "/system logging", "add action=jedsyslog topics=info"]
    if base.banner:
        lines += ["/system note", f'set note="{BANNER}" show-at-login=yes']
    if base.ntp:
        lines += ["/system ntp client", "set enabled=yes", "/system ntp client servers"]
        lines += [f"add address={s}" for s in NTP_SERVERS]
    lines += ["/user", f'add group=full name=netops password="{_secret(h, "netops", 16)}"',
              f'add group=read name=backup password="{_secret(h, "backup", 16)}"', ""]
    del plan
    return "\n".join(lines)


# --- HPE ArubaOS-Switch (ProCurve) ----------------------------------------------------------------


def procurve_config(device: Device, generation: int = 0) -> str:
    """``show running-config`` of an ArubaOS-Switch (ProCurve)."""
    h = device.hostname
    base = baseline_of(h)
    plan = _plan(device)
    first = _first_port(device)
    lines = [
        "Running configuration:",
        "",
        f"; {device.model.model} Configuration Editor; Created on release #{device.platform.os_version}",
        "; Ver #14:01.4f.f8.1d.9b.3f.bf.bb.ef.7c.59.fc.6b.fb.9f.fc.ff.ff.37.ef:05",
        f'hostname "{h}"',
        'time timezone 180',
        "include-credentials",
    ]
    if base.banner:
        lines.append(f'banner motd "{BANNER}"')
    if base.ntp:
        lines += ["timesync ntp", "ntp unicast", "ntp enable"] + [f"ntp server {s} iburst" for s in NTP_SERVERS]
    if base.syslog:
        lines += [f"logging {SYSLOG_SERVER}", "logging severity info"]
    lines += [f'radius-server host {RADIUS_SERVER} key "{_secret(h, "radius", 18)}"',
              f'tacacs-server host {TACACS_SERVER} key "{_secret(h, "tac", 16)}"',
              "no web-management", "no telnet-server" if not base.telnet else "telnet-server",
              f"ip ssh version {base.ssh_version}" if base.ssh_version == 1 else "ip ssh",
              f'snmp-server community "{base.community}" operator',
              f'snmp-server location "Jeddah {device.site}"', 'snmp-server contact "noc@jeddah.example"']
    for iface in device.interfaces:
        if not iface.port:
            continue
        lines.append(f"interface {iface.name}")
        desc = _description(device, iface.name, iface.alias, generation, first)
        if desc:
            lines.append(f'   name "{desc}"')
        if not iface.admin_up:
            lines.append("   disable")
        lines.append("   exit")
    address, mask = plan.get("mgmt", (device.address, "255.255.255.255"))
    lines += ['vlan 1', '   name "DEFAULT_VLAN"', "   untagged 1-28", f"   ip address {address} {mask}", "   exit",
              f"ip route 0.0.0.0 0.0.0.0 10.{_octets(h)[0]}.0.1",
              f"ip route {_route(generation)} 255.255.255.0 blackhole",
              f'password manager user-name "netops" sha1 "{hashlib.sha1(_secret(h, "mgr").encode()).hexdigest()}"',
              f'password operator user-name "backup" sha1 "{hashlib.sha1(_secret(h, "op").encode()).hexdigest()}"',
              "ip ssh public-key manager " + f'"ssh-rsa {_pubkey(h)} netops@noc"', ""]
    return "\n".join(lines)


# --- HPE Aruba AOS-CX -----------------------------------------------------------------------------


def aoscx_config(device: Device, generation: int = 0) -> str:
    """``show running-config`` of an AOS-CX switch."""
    h = device.hostname
    base = baseline_of(h)
    first = _first_port(device)
    lines = [
        "Current configuration:",
        "!",
        f"!Version ArubaOS-CX {device.platform.os_version}",
        "!export-password: default",
        f"hostname {h}",
        f"user admin group administrators password ciphertext AQBapW{_secret(h, 'admin', 40)}",
        f"user netops group administrators password ciphertext AQBapX{_secret(h, 'netops', 40)}",
        f"user netops authorized-key ssh-rsa {_pubkey(h)} netops@noc",
        f"radius-server host {RADIUS_SERVER} key ciphertext AQBapY{_secret(h, 'radius', 30)}",
        f"tacacs-server host {TACACS_SERVER} key ciphertext AQBapZ{_secret(h, 'tac', 30)}",
        "clock timezone asia/riyadh",
    ]
    if base.ntp:
        lines += [f"ntp server {s} iburst" for s in NTP_SERVERS] + ["ntp enable"]
    if base.syslog:
        lines.append(f"logging {SYSLOG_SERVER} severity info")
    if base.banner:
        lines += ["banner motd !", BANNER, "!"]
    lines += ["ssh server vrf mgmt", f"snmp-server community {base.community}",
              f"snmp-server system-location Jeddah {device.site}", "snmp-server vrf mgmt"]
    if base.telnet:
        lines.append("telnet server vrf mgmt")
    lines += ["vlan 1,10"]
    for iface in device.interfaces:
        if not iface.port:
            continue
        lines.append(f"interface {iface.name}")
        desc = _description(device, iface.name, iface.alias, generation, first)
        if desc:
            lines.append(f"    description {desc}")
        lines.append("    no shutdown" if iface.admin_up else "    shutdown")
        lines.append("    no routing" if iface.role == "access" else "    routing")
        lines.append("    exit")
    lines += ["interface mgmt", "    no shutdown", f"    ip static {device.address}/32",
              f"ip route {_route(generation)}/24 blackhole", "", ""]
    return "\n".join(lines)


# --- Linux ----------------------------------------------------------------------------------------


def linux_files(device: Device, generation: int = 0) -> dict[str, str]:
    """The files a Linux host's backup reads (``cat`` of each, in platforms.yaml's order)."""
    h = device.hostname
    base = baseline_of(h)
    plan = _plan(device)
    first = _first_port(device)
    interfaces = ["# interfaces(5) file used by ifup(8) and ifdown(8)", "auto lo", "iface lo inet loopback", ""]
    for iface in device.interfaces:
        if not iface.port:
            continue
        desc = _description(device, iface.name, iface.alias, generation, first)
        if desc:
            interfaces.append(f"# {desc}")
        interfaces.append(f"auto {iface.name}")
        if iface.role in plan:
            address, mask = plan[iface.role]
            interfaces += [f"iface {iface.name} inet static", f"    address {address}", f"    netmask {mask}"]
        else:
            interfaces.append(f"iface {iface.name} inet manual")
        interfaces.append("")
    interfaces += [f"up ip route add blackhole {_route(generation)}/24", ""]
    sshd = ["# Jeddah baseline", "Port 22", f"Protocol {base.ssh_version}", "PermitRootLogin no",
            "PasswordAuthentication yes", "X11Forwarding no", "Subsystem sftp /usr/lib/openssh/sftp-server"]
    if base.banner:
        sshd.append("Banner /etc/issue.net")
    chrony = ["# chrony.conf (Jeddah)"]
    if base.ntp:
        chrony += [f"server {s} iburst" for s in NTP_SERVERS]
    chrony += ["driftfile /var/lib/chrony/chrony.drift", "makestep 1 3", ""]
    return {
        "/etc/hostname": f"{h}\n",
        "/etc/hosts": f"127.0.0.1\tlocalhost\n{device.address}\t{h}.{DOMAIN} {h}\n",
        "/etc/network/interfaces": "\n".join(interfaces),
        "/etc/ssh/sshd_config": "\n".join(sshd) + "\n",
        "/etc/chrony/chrony.conf": "\n".join(chrony),
        "/etc/snmp/snmpd.conf": f"rocommunity {base.community} 10.10.0.0/24\n"
        + (f"trapsink {SYSLOG_SERVER}\n" if base.syslog else ""),
        "/etc/rsyslog.d/remote.conf": f"*.* @@{SYSLOG_SERVER}:514\n" if base.syslog else "",
        "/etc/telnetd": "enabled\n" if base.telnet else "",
    }


def linux_config(device: Device, generation: int = 0) -> str:
    files = linux_files(device, generation)
    return "".join(files[p] for p in ("/etc/hostname", "/etc/hosts", "/etc/network/interfaces",
                                       "/etc/ssh/sshd_config", "/etc/chrony/chrony.conf"))


CONFIG_BUILDERS: dict[str, Callable[[Device, int], str]] = {
    "ios": cisco_config,
    "ios-xe": cisco_config,
    "junos": junos_config,
    "routeros": routeros_config,
    "arubaos-switch": procurve_config,
    "aos-cx": aoscx_config,
    "linux": linux_config,
}


def running_config(device: Device, generation: int = 0) -> str:
    """The configuration text the device prints for its backup command, lines ending ``\\n``."""
    return CONFIG_BUILDERS[device.platform.key](device, generation)


# --- the synthetic fleet (benchmarks) ---------------------------------------------------------------


def fleet_config(hostname: str, address: str, index: int, generation: int = 0) -> str:
    """A Cisco IOS-XE access-switch configuration of realistic size (~300–600 lines) for the
    benchmark fleet: the port count varies with the index so sizes spread."""
    ports = 40 + (index % 3) * 20  # 40, 60, 80 ports: ~310, ~450, ~590 lines
    lines = ["Building configuration...", "", f"Current configuration : {ports * 180} bytes", "!",
             f"! Last configuration change at 0{generation % 10}:00:00 AST Mon Jan 1 2024", "!",
             "version 17.9", "service timestamps log datetime msec", "service password-encryption", "!",
             f"hostname {hostname}", "!",
             f"enable secret 9 $9${_secret(hostname, 'enable-salt', 14)}${_secret(hostname, 'enable', 43)}",
             f"username netops privilege 15 secret 9 $9${_secret(hostname, 'n-salt', 14)}${_secret(hostname, 'n', 43)}",
             "aaa new-model", f"ip domain name {DOMAIN}", "ip ssh version 2", "!"]
    for n in range(1, ports + 1):
        lines += [f"interface GigabitEthernet1/0/{n}", f" description user port {n:02d} floor {n // 12 + 1}",
                  " switchport access vlan 10", " switchport mode access", " switchport voice vlan 20",
                  " spanning-tree portfast", "!"]
    lines += ["interface Vlan1", f" ip address {address} 255.255.255.255", "!",
              f"ip route {_route(generation)} 255.255.255.0 Null0",
              f"snmp-server community {BASELINE_COMMUNITY} RO", f"logging host {SYSLOG_SERVER}",
              f"radius server R1\n address ipv4 {RADIUS_SERVER}\n key {_secret(hostname, 'radius', 18)}",
              f"banner login ^C{BANNER}^C", "line vty 0 15", " transport input ssh", "!",
              f"ntp server {NTP_SERVERS[0]}", "!", "end", ""]
    return "\n".join(lines)
