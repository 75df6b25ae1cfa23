"""The city's SSH devices, driven by netmiko's real platform drivers.

Each platform answers its driver's session preparation (prompt, paging off, terminal width) and
its backup command; the behaviours the SSH collector must survive (refused login, a device that
never shows a prompt, a slow banner, paging that cannot be turned off, changing configurations
and host keys) are there and on the devices the expectations name.
"""

from __future__ import annotations

import re
import socket
from typing import Any

import netmiko
import paramiko
import pytest
from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException, ReadTimeout

from infra_mgr.lab.city import RunningCity
from infra_mgr.lab.peers import SYS_NAME, snmp_get
from infra_mgr.lab.ssh_configs import BASELINE_COMMUNITY, baseline_of
from infra_mgr.lab.ssh_lab import RunningSsh

pytestmark = pytest.mark.usefixtures("city_ssh")

BACKUP = {
    "cisco_xe": "show running-config",
    "cisco_ios": "show running-config",
    "juniper_junos": "show configuration",
    "mikrotik_routeros": "/export show-sensitive",
    "hp_procurve": "show running-config",
    "aruba_aoscx": "show running-config",
    "linux": "cat /etc/hostname /etc/hosts /etc/network/interfaces /etc/ssh/sshd_config /etc/chrony/chrony.conf",
}
PROMPTS = {
    "cisco_xe": "{h}#",
    "cisco_ios": "{h}#",
    "juniper_junos": "netops@{h}>",
    "mikrotik_routeros": "[netops@{h}] >",
    "hp_procurve": "{h}#",
    "aruba_aoscx": "{h}#",
    "linux": "netops@{h}:~$",
}


def connect(ssh: RunningSsh, device: dict[str, Any], **extra: Any) -> netmiko.BaseConnection:
    return netmiko.ConnectHandler(device_type=device["device_type"], host=device["address"], port=ssh.port,
                                  username=ssh.username, password=ssh.password, **extra)


def backup(ssh: RunningSsh, device: dict[str, Any]) -> str:
    conn = connect(ssh, device)
    try:
        return str(conn.send_command(BACKUP[device["device_type"]]))
    finally:
        conn.disconnect()


def plain(ssh: RunningSsh) -> list[dict[str, Any]]:
    """Devices with no behaviour, one per device_type (the first in the city's order)."""
    seen: dict[str, dict[str, Any]] = {}
    for device in ssh.expected["devices"]:
        if not device["behaviours"] and not device["ssh_only"]:
            seen.setdefault(device["device_type"], device)
    return list(seen.values())


def test_every_platform_answers_its_driver_with_its_prompt_and_configuration(city_ssh: RunningSsh) -> None:
    devices = plain(city_ssh)
    assert {d["device_type"] for d in devices} == set(BACKUP)
    for device in devices:
        h = device["hostname"]
        conn = connect(city_ssh, device)
        try:
            prompt = conn.find_prompt()
            text = str(conn.send_command(BACKUP[device["device_type"]]))
            unknown = str(conn.send_command("show no-such-thing"))
        finally:
            conn.disconnect()
        assert prompt == PROMPTS[device["device_type"]].format(h=h), device["device_type"]
        assert h in text and len(text.splitlines()) > 30, device["device_type"]
        assert text.count(h) >= 1 and "--More--" not in text
        assert unknown and h not in unknown, device["device_type"]  # the platform's "invalid" answer


def test_configurations_carry_the_secrets_masking_must_remove(city_ssh: RunningSsh) -> None:
    found = {d["device_type"]: backup(city_ssh, d) for d in plain(city_ssh)}
    assert re.search(r"^enable secret 9 \S+", found["cisco_xe"], re.M)
    assert re.search(r"^username netops privilege 15 secret 9 \S+", found["cisco_ios"], re.M)
    assert re.search(r"^snmp-server community \S+ RO", found["cisco_xe"], re.M)
    assert "key-string" in found["cisco_xe"] and re.search(r"^ key \S+", found["cisco_xe"], re.M)
    assert re.search(r'encrypted-password "\$6\$', found["juniper_junos"])
    assert re.search(r'secret "\$9\$', found["juniper_junos"])
    assert re.search(r'password="[^"]+"', found["mikrotik_routeros"]) and 'secret="' in found["mikrotik_routeros"]
    assert re.search(r'radius-server host \S+ key "', found["hp_procurve"])
    assert "password ciphertext" in found["aruba_aoscx"]


def test_configuration_agrees_with_the_city_model(city_ssh: RunningSsh, city: RunningCity) -> None:
    device = city_ssh.device("jed-b01-rtr")
    text = backup(city_ssh, device)
    snmp = city.device("jed-b01-rtr")
    aliases = [i["alias"] for i in snmp["interfaces"] if i["alias"]]
    assert f"hostname {snmp['hostname']}" in text
    assert aliases and all(f" description {a}" in text for a in aliases)


def test_baseline_breaks_are_exactly_the_listed_devices(city_ssh: RunningSsh) -> None:
    breaks = city_ssh.expected["baseline_breaks"]
    public = backup(city_ssh, city_ssh.device(breaks["snmp_community_public"]))
    telnet = backup(city_ssh, city_ssh.device(breaks["telnet_enabled"]))
    no_banner = backup(city_ssh, city_ssh.device(breaks["no_banner"]))
    healthy = backup(city_ssh, city_ssh.device("jed-b01-rtr"))
    assert "snmp-server community public RO" in public
    assert "transport input ssh telnet" in telnet
    assert "banner login" not in no_banner
    assert f"snmp-server community {BASELINE_COMMUNITY} RO" in healthy and "banner login" in healthy
    assert "transport input ssh telnet" not in healthy and "ip ssh version 2" in healthy
    assert baseline_of("jed-b01-rtr").community == BASELINE_COMMUNITY


def test_the_pager_stops_at_more_until_a_key(city_ssh: RunningSsh) -> None:
    device = city_ssh.with_behaviour("pager")
    conn = connect(city_ssh, device)
    try:
        with pytest.raises(ReadTimeout):
            conn.send_command("show running-config", read_timeout=3)
        conn.write_channel(" ")
        more = conn.read_until_pattern(pattern=r"--More--", read_timeout=5)
    finally:
        conn.disconnect()
    assert "--More--" in more


def test_the_refusing_device_rejects_the_password(city_ssh: RunningSsh) -> None:
    with pytest.raises(NetmikoAuthenticationException):
        connect(city_ssh, city_ssh.with_behaviour("refuse"))


def test_the_hanging_device_never_gives_a_prompt(city_ssh: RunningSsh) -> None:
    with pytest.raises((NetmikoTimeoutException, ReadTimeout, ValueError, OSError)):
        connect(city_ssh, city_ssh.with_behaviour("hang"), conn_timeout=5, read_timeout_override=3)


def test_the_slow_banner_device_still_works_with_a_normal_client(city_ssh: RunningSsh) -> None:
    device = city_ssh.with_behaviour("slow_banner")
    assert city_ssh.expected["slow_banner_s"] >= 5
    text = backup(city_ssh, device)
    assert f"hostname {device['hostname']}" in text


def test_a_changing_device_shows_a_new_line_each_session(city_ssh: RunningSsh) -> None:
    device = city_ssh.with_behaviour("changing")
    first, second = backup(city_ssh, device), backup(city_ssh, device)
    removed = set(first.splitlines()) - set(second.splitlines())
    added = set(second.splitlines()) - set(first.splitlines())
    meaningful = {line for line in removed | added if not line.startswith(("! Last", "## Last", "# 20"))}
    assert meaningful  # more than a timestamp


def test_run_time_change_gives_a_different_text(city_ssh: RunningSsh) -> None:
    device = city_ssh.device("jed-b08-rtr")
    before = backup(city_ssh, device)
    assert backup(city_ssh, device) == before  # a quiet device stays the same
    city_ssh.control().change(device["hostname"])
    after = backup(city_ssh, device)
    assert after != before and f"host-name {device['hostname']}" in after


def host_key_of(host: str, port: int) -> str:
    with socket.create_connection((host, port), timeout=5) as sock:
        transport = paramiko.Transport(sock)
        try:
            transport.start_client(timeout=5)
            key = transport.get_remote_server_key()
        finally:
            transport.close()
    return f"{key.get_name()} {key.get_base64()}"


def test_rekey_changes_the_host_key_and_only_when_told(city_ssh: RunningSsh) -> None:
    device = city_ssh.with_behaviour("rekey")
    first = host_key_of(device["address"], city_ssh.port)
    assert host_key_of(device["address"], city_ssh.port) == first  # stable until told
    fingerprint = city_ssh.control().rekey(device["hostname"])
    second = host_key_of(device["address"], city_ssh.port)
    assert second != first and fingerprint.startswith("SHA256:")
    assert backup(city_ssh, device)  # the device still serves its CLI under the new key


def test_ssh_only_devices_answer_ssh_and_not_snmp(city_ssh: RunningSsh, city: RunningCity) -> None:
    names = city_ssh.expected["ssh_only"]
    assert len(names) == 3
    ssh_only = {d["hostname"]: d for d in city.expected["ssh_only"]["devices"]}
    assert set(ssh_only) == set(names) and not {d["hostname"] for d in city.devices} & set(names)
    device = city_ssh.device(names[0])
    text = backup(city_ssh, device)
    assert f"hostname {names[0]}" in text
    with pytest.raises(TimeoutError):
        snmp_get(device["address"], city.port, "public", SYS_NAME, timeout=0.5)
    # cabled to its branch switch (expected.json, under ssh_only), which its own CLI LLDP names
    link = next(lk for lk in city.expected["ssh_only"]["links"] if lk["b"].startswith(f"{names[0]}:"))
    parent = link["a"].split(":")[0]
    assert parent == names[0].removesuffix("2") and ssh_only[names[0]]["served_by"] is None
    conn = connect(city_ssh, device)
    try:
        lldp = str(conn.send_command("show lldp neighbors detail"))
    finally:
        conn.disconnect()
    assert parent in lldp
