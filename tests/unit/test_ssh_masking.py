"""Secret masking per platform: every secret gone, everything else intact, masking idempotent."""

from __future__ import annotations

from typing import Any

import pytest

from infra_mgr.network.ssh.masking import MARKER, MaskingTable, mask, masking_table, secret_lines

IOS = """\
Building configuration...

Current configuration : 4120 bytes
!
version 17.9
service password-encryption
hostname JED-BR01-RTR1
!
enable secret 9 $9$nhEmQVczB7dqsO$X.HsgL6x1il0RxkOSSvyQYwucySCt7qFm4v7pqCxkKM
enable password 7 094F471A1A0A
!
username netops privilege 15 secret 9 $9$q1Wv3n0ZW3lZZ0$BadgerTail88
username backup privilege 1 password 7 1511021F0725
!
aaa new-model
aaa authentication login default group tacacs+ local
tacacs server TAC1
 address ipv4 10.20.0.10
 key 7 06575D72181B5F4E
radius server RAD1
 address ipv4 10.20.0.11 auth-port 1812 acct-port 1813
 key 0 RadiusShared-Jeddah
 pac key 7 045802150C2E
tacacs-server host 10.20.0.12 key 7 110A1016141D5A5E57
radius-server key 0 GlobalRadKey-77
!
crypto isakmp key 0 IsakmpPSK-Corniche address 10.9.9.9
crypto ikev2 keyring KR
 peer HQ
  address 10.9.9.10
  pre-shared-key local 0 IkeLocalPSK-1
  pre-shared-key remote 0 IkeRemotePSK-2
!
crypto pki certificate chain TP-self-signed-4711
 certificate self-signed 01
  3082024E 308201B7 A0030201 02020101 300D0609 2A864886 F70D0101 05050030
  30312E30 2C060355 04031325 494F532D 53656C66 2D536967 6E65642D 43657274
  \tquit
!
key chain OSPF-KEYS
 key 1
  key-string 7 0508571C22431F5B4A
!
interface GigabitEthernet0/0/0
 description Uplink to HQ (password rotation every 90 days)
 ip address 10.1.1.1 255.255.255.252
 ip ospf authentication-key 7 13061E010803
 ip ospf message-digest-key 1 md5 7 01100F175804
 vrrp 1 authentication text VrrpText9
 standby 1 authentication md5 key-string 7 104D000A0618
!
router bgp 65001
 neighbor 10.1.1.2 remote-as 65000
 neighbor 10.1.1.2 password 7 02050D480809
!
snmp-server community public RO
snmp-server community Mun1c1pal-RW RW 10
snmp-server user monitor NMS v3 auth sha Sn1mpAuthKey priv aes 128 Sn1mpPrivKey
snmp-server host 10.20.0.30 version 2c TrapComm-Hidden
ntp authentication-key 1 md5 NtpKeyValue-5 7
!
line vty 0 4
 password 7 0822455D0A16XY
 transport input ssh
!
end
"""
IOS_SECRETS = [
    "$9$nhEmQVczB7dqsO", "094F471A1A0A", "BadgerTail88", "1511021F0725", "06575D72181B5F4E",
    "RadiusShared-Jeddah", "045802150C2E", "110A1016141D5A5E57", "GlobalRadKey-77", "IsakmpPSK-Corniche",
    "IkeLocalPSK-1", "IkeRemotePSK-2", "3082024E", "30312E30", "0508571C22431F5B4A", "13061E010803",
    "01100F175804", "VrrpText9", "104D000A0618", "02050D480809", "Mun1c1pal-RW", "Sn1mpAuthKey",
    "Sn1mpPrivKey", "TrapComm-Hidden", "NtpKeyValue-5", "0822455D0A16XY",
]
IOS_KEPT = [
    "hostname JED-BR01-RTR1", "service password-encryption", " key 1\n", "snmp-server community public RO",
    " description Uplink to HQ (password rotation every 90 days)",
    "crypto isakmp key 0 <secret hidden> address 10.9.9.9",
    "snmp-server user monitor NMS v3 auth sha <secret hidden> priv aes 128 <secret hidden>",
    "username netops privilege 15 secret 9 <secret hidden>\n", " neighbor 10.1.1.2 remote-as 65000",
    "snmp-server community <secret hidden> RW 10", " certificate self-signed 01\n  <secret hidden>\n  \tquit",
]

NXOS = """\
!Command: show running-config
!Running configuration last done at: Mon Nov 30 10:00:00 2026
version 9.3(8)
hostname JED-DC-NX1
feature tacacs+
username admin password 5 $5$KLMNOP$NxosHashValue0123  role network-admin
snmp-server user admin network-admin auth md5 0x5a1e7c0ffee0 priv 0xdecafbad1234 localizedkey
snmp-server community NxRoComm group network-operator
tacacs-server key 7 "NxTacKey99"
radius-server host 10.20.0.11 key 7 "NxRadKey42" authentication accounting
interface Ethernet1/1
  ip ospf authentication-key 3 NxOspfKey3
  vrrp 10
    authentication text NxVrrp10
"""
NXOS_SECRETS = ["NxosHashValue0123", "0x5a1e7c0ffee0", "0xdecafbad1234", "NxRoComm", "NxTacKey99", "NxRadKey42",
                "NxOspfKey3", "NxVrrp10"]
NXOS_KEPT = ["role network-admin", "localizedkey", "group network-operator", "authentication accounting",
             "feature tacacs+"]

EOS = """\
! Command: show running-config
hostname jed-core-eos1
enable password sha512 $6$EosEnableSalt$EosEnableHashValue
username admin privilege 15 role network-admin secret sha512 $6$EosUserSalt$EosUserHash
username ops ssh-key ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPubKeyIsNotSecret ops@jed
snmp-server community EosComm ro
snmp-server user mon grp v3 localized 000000090200000000000000 auth sha EosLocAuth priv aes EosLocPriv
tacacs-server host 10.20.0.10 key 7 EosTac070C
ntp authentication-key 1 md5 7 EosNtp1122
router bgp 65010
   neighbor 10.0.0.2 password 7 EosBgpPw77
"""
EOS_SECRETS = ["EosEnableHashValue", "EosUserHash", "EosComm", "EosLocAuth", "EosLocPriv", "EosTac070C",
               "EosNtp1122", "EosBgpPw77"]
EOS_KEPT = ["AAAAC3NzaC1lZDI1NTE5AAAAIPubKeyIsNotSecret", "role network-admin secret sha512 <secret hidden>"]

JUNOS = """\
## Last commit: 2026-11-30 09:00:00 AST by netops
version 22.4R3;
system {
    host-name JED-BR02-MX1;
    root-authentication {
        encrypted-password "$6$JunRootSalt$JunRootHash"; ## SECRET-DATA
    }
    login {
        user netops {
            uid 2001;
            class super-user;
            authentication {
                encrypted-password "$6$JunUserSalt$JunUserHash"; ## SECRET-DATA
                ssh-ed25519 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJunosPublic netops@jed";
            }
        }
    }
    radius-server {
        10.20.0.11 secret "$9$JunRadiusSecret"; ## SECRET-DATA
    }
    tacplus-server {
        10.20.0.10 secret "$9$JunTacSecret"; ## SECRET-DATA
    }
    ntp {
        authentication-key 1 type md5 value "$9$JunNtpValue"; ## SECRET-DATA
    }
}
snmp {
    community public {
        authorization read-only;
    }
    community "JunCommunityRW" {
        authorization read-write;
    }
    v3 {
        usm {
            local-engine {
                user mon {
                    authentication-sha {
                        authentication-key "$9$JunSnmpAuth"; ## SECRET-DATA
                    }
                    privacy-aes128 {
                        privacy-key "$9$JunSnmpPriv"; ## SECRET-DATA
                    }
                }
            }
        }
    }
}
protocols {
    ospf {
        area 0.0.0.0 {
            interface ge-0/0/0.0 {
                authentication {
                    md5 1 key "$9$JunOspfMd5"; ## SECRET-DATA
                }
            }
        }
    }
    bgp {
        group HQ {
            authentication-key "$9$JunBgpKey"; ## SECRET-DATA
        }
    }
}
security {
    ike {
        policy HQ {
            pre-shared-key ascii-text "$9$JunIkePsk"; ## SECRET-DATA
        }
    }
}
"""
JUNOS_SET = """\
set system root-authentication encrypted-password "$6$JunSetRootHash"
set snmp community JunSetComm authorization read-only
set snmp community public authorization read-only
set protocols vrrp group 1 authentication-key JunSetVrrp
set system ntp authentication-key 2 type md5 value "$9$JunSetNtp"
"""
JUNOS_SECRETS = ["JunRootHash", "JunUserHash", "JunRadiusSecret", "JunTacSecret", "JunNtpValue", "JunCommunityRW",
                 "JunSnmpAuth", "JunSnmpPriv", "JunOspfMd5", "JunBgpKey", "JunIkePsk"]
JUNOS_KEPT = ["community public {", "AAAAC3NzaC1lZDI1NTE5AAAAIJunosPublic", "authentication-key 1 type md5 value",
              'encrypted-password "<secret hidden>"; ## SECRET-DATA', "md5 1 key"]

ROUTEROS = """\
# 2026-11-30 10:00:00 by RouterOS 7.16
# software id = AB12-CD34
/interface wireguard
add listen-port=13231 mtu=1420 name=wg-hq private-key="RosWgPrivateKey+abc="
/interface wireless security-profiles
add authentication-types=wpa2-psk mode=dynamic-keys name=branch \\
    wpa2-pre-shared-key=RosWifiPsk123
/ip ipsec identity
add peer=hq secret=RosIpsecSecret
/ppp secret
add name=remote1 password=RosPppPass service=l2tp
/radius
add address=10.20.0.11 secret="Ros Radius Secret" service=login
/routing ospf interface-template
add area=backbone auth=md5 auth-id=1 auth-key=RosOspfKey interfaces=ether1
/routing bgp connection
add name=hq remote.address=10.0.0.1 tcp-md5-key=RosBgpMd5
/snmp community
set [ find default=yes ] name=public
add addresses=10.20.0.0/24 name=RosCommunity2 security=none
add authentication-password=RosSnmpAuth encryption-password=RosSnmpPriv name=v3mon
/snmp
set enabled=yes trap-community=RosTrapComm
/system identity
set name=JED-BR03-MT1
/user
add group=read name=backup password=RosUserPass
"""
ROUTEROS_SECRETS = ["RosWgPrivateKey", "RosWifiPsk123", "RosIpsecSecret", "RosPppPass", "Ros Radius Secret",
                    "RosOspfKey", "RosBgpMd5", "RosCommunity2", "RosSnmpAuth", "RosSnmpPriv", "RosTrapComm",
                    "RosUserPass", "v3mon"]
ROUTEROS_KEPT = ["name=JED-BR03-MT1", "name=remote1", "set [ find default=yes ] name=public", "name=backup",
                 'secret="<secret hidden>" service=login', "name=wg-hq"]

PROCURVE = """\
Running configuration:

; J9773A Configuration Editor; Created on release #YA.16.11.0002
hostname "JED-BR04-SW1"
snmp-server community "public" unrestricted
snmp-server community "HpOperComm" operator
snmpv3 user "mon" auth sha "HpV3Auth" priv aes "HpV3Priv"
radius-server host 10.20.0.11 key "HpRadiusKey"
tacacs-server host 10.20.0.10 encrypted-key "HpTacEncKey="
password manager user-name "admin" sha1 "a1b2c3d4e5f6HpManager"
password operator user-name "viewer" plaintext "HpOperatorPlain"
vlan 10
   name "Staff"
   untagged 1-20
   exit
"""
PROCURVE_SECRETS = ["HpOperComm", "HpV3Auth", "HpV3Priv", "HpRadiusKey", "HpTacEncKey", "a1b2c3d4e5f6HpManager",
                    "HpOperatorPlain"]
PROCURVE_KEPT = ['snmp-server community "public" unrestricted', 'name "Staff"', 'hostname "JED-BR04-SW1"',
                 'password manager user-name "admin" sha1 "<secret hidden>"']

AOSCX = """\
Current configuration:
!
!Version ArubaOS-CX FL.10.13.1000
hostname JED-DC-CX1
user admin group administrators password ciphertext AQBapaCxAdminCipher
snmp-server community CxCommunity
snmpv3 user mon auth sha auth-pass ciphertext AQBapaCxAuth priv aes priv-pass ciphertext AQBapaCxPriv
radius-server host 10.20.0.11 key ciphertext AQBapaCxRadius vrf mgmt
ntp authentication-key 1 md5 ciphertext AQBapaCxNtp
interface 1/1/1
    ip ospf authentication-key ciphertext AQBapaCxOspf
"""
AOSCX_SECRETS = ["AQBapaCxAdminCipher", "CxCommunity", "AQBapaCxAuth", "AQBapaCxPriv", "AQBapaCxRadius",
                 "AQBapaCxNtp", "AQBapaCxOspf"]
AOSCX_KEPT = ["user admin group administrators password ciphertext <secret hidden>", "vrf mgmt", "interface 1/1/1"]

FORTINET = """\
#config-version=FGT60F-7.2.8-FW-build1639:opmode=0:vdom=0
config system global
    set hostname "JED-BR05-FGT"
end
config system admin
    edit "admin"
        set accprofile "super_admin"
        set password ENC SH2FortiAdminHashValue=
    next
end
config system snmp community
    edit 1
        set name "FortiCommunity"
        config hosts
            edit 1
                set ip 10.20.0.30 255.255.255.255
            next
        end
    next
end
config system snmp user
    edit "mon"
        set auth-pwd ENC FortiSnmpAuth
        set priv-pwd ENC FortiSnmpPriv
    next
end
config user radius
    edit "RAD1"
        set server "10.20.0.11"
        set secret ENC FortiRadiusSecret
    next
end
config user local
    edit "guest"
        set type password
        set passwd "FortiPlainGuest"
    next
end
config vpn ipsec phase1-interface
    edit "to-hq"
        set psksecret ENC FortiIpsecPsk
    next
end
config vpn certificate local
    edit "branch"
        set password ENC FortiCertPass
        set private-key "-----BEGIN ENCRYPTED PRIVATE KEY-----
MIIFHDBOBgkqhkiG9w0BBQ0wQTApFortiPrivBody1
dGhpcyBpcyBub3QgYSByZWFsIGtleQFortiPrivBody2
-----END ENCRYPTED PRIVATE KEY-----"
    next
end
config router bgp
    config neighbor
        edit "10.0.0.1"
            set password ENC FortiBgpPass
        next
    end
end
"""
FORTINET_SECRETS = ["FortiAdminHashValue", "FortiCommunity", "FortiSnmpAuth", "FortiSnmpPriv", "FortiRadiusSecret",
                    "FortiPlainGuest", "FortiIpsecPsk", "FortiCertPass", "FortiPrivBody1", "FortiPrivBody2",
                    "FortiBgpPass"]
FORTINET_KEPT = ["set type password", 'set hostname "JED-BR05-FGT"', "set ip 10.20.0.30 255.255.255.255",
                 "set password ENC <secret hidden>", '-----END ENCRYPTED PRIVATE KEY-----"', 'set server "10.20.0.11"']

LINUX = """\
jed-br06-srv1
127.0.0.1 localhost
10.6.0.10 jed-br06-srv1.jeddah.example jed-br06-srv1
auto eth0
iface eth0 inet static
    address 10.6.0.10/24
auto wlan0
iface wlan0 inet dhcp
    wpa-ssid Branch-Staff
    wpa-psk LinuxWifiPsk
# sshd
PermitRootLogin no
PasswordAuthentication no
PermitEmptyPasswords no
# chrony
server 10.20.0.5 iburst key 1
keyfile /etc/chrony/chrony.keys
1 SHA256 HEX:ABCDEF0123456789LinuxNtpHex
backup:$6$LinSalt$LinuxShadowHash:19700:0:99999:7:::
rocommunity LinuxRoComm 10.20.0.0/24
rocommunity public
smtp_password = LinuxSmtpPassword
"""
LINUX_SECRETS = ["LinuxWifiPsk", "LinuxNtpHex", "LinuxShadowHash", "LinuxRoComm", "LinuxSmtpPassword"]
LINUX_KEPT = ["PermitRootLogin no", "PasswordAuthentication no", "PermitEmptyPasswords no", "wpa-ssid Branch-Staff",
              "rocommunity public", "backup:<secret hidden>:19700:0:99999:7:::", "server 10.20.0.5 iburst key 1"]

CASES = {
    "cisco_ios": (IOS, IOS_SECRETS, IOS_KEPT),
    "cisco_xe": (IOS, IOS_SECRETS, IOS_KEPT),
    "cisco_nxos": (NXOS, NXOS_SECRETS, NXOS_KEPT),
    "arista_eos": (EOS, EOS_SECRETS, EOS_KEPT),
    "juniper_junos": (JUNOS, JUNOS_SECRETS, JUNOS_KEPT),
    "mikrotik_routeros": (ROUTEROS, ROUTEROS_SECRETS, ROUTEROS_KEPT),
    "hp_procurve": (PROCURVE, PROCURVE_SECRETS, PROCURVE_KEPT),
    "aruba_aoscx": (AOSCX, AOSCX_SECRETS, AOSCX_KEPT),
    "fortinet": (FORTINET, FORTINET_SECRETS, FORTINET_KEPT),
    "linux": (LINUX, LINUX_SECRETS, LINUX_KEPT),
}


@pytest.mark.parametrize("device_type", sorted(CASES))
def test_every_secret_is_hidden_and_the_rest_kept(device_type: str) -> None:
    text, secrets, kept = CASES[device_type]
    masked = mask(text, device_type)
    leaked = [s for s in secrets if s in masked]
    assert not leaked, f"{device_type} leaks {leaked}"
    missing = [k for k in kept if k not in masked]
    assert not missing, f"{device_type} lost {missing}"
    assert MARKER in masked


@pytest.mark.parametrize("device_type", sorted(CASES))
def test_lines_without_secrets_are_untouched(device_type: str) -> None:
    text, _, _ = CASES[device_type]
    flagged = set(secret_lines(text, device_type))
    masked_lines = mask(text, device_type).splitlines()
    for number, line in enumerate(text.splitlines(), 1):
        if number not in flagged:
            assert line in masked_lines, f"{device_type} line {number} changed: {line!r}"
    assert flagged, "the flagged lines are the ones with secrets"


@pytest.mark.parametrize("device_type", sorted(CASES))
def test_masking_is_idempotent(device_type: str) -> None:
    text, _, _ = CASES[device_type]
    once = mask(text, device_type)
    assert mask(once, device_type) == once
    assert secret_lines(once, device_type) == []


def test_a_rotated_secret_alone_does_not_change_the_masked_text() -> None:
    before = "hostname R1\nusername netops privilege 15 secret 9 $9$FirstHashValue\n"
    after = "hostname R1\nusername netops privilege 15 secret 9 $9$SecondHashValue\n"
    assert mask(before, "cisco_ios") == mask(after, "cisco_ios")
    changed = after.replace("privilege 15", "privilege 1")
    assert mask(changed, "cisco_ios") != mask(before, "cisco_ios")


def test_secret_lines_name_exactly_the_lines_with_secrets() -> None:
    text = ("hostname R1\nenable secret 9 $9$abc\ninterface Gi1\n snmp-server community X1y2\n"
            "snmp-server community Zz9 RO\n")
    assert secret_lines(text, "cisco_ios") == [2, 5]


def test_an_unknown_platform_gets_every_rule() -> None:
    text = "snmp-server community OddComm RO\nset password ENC OddEnc\nuser:$6$s$OddShadow:1:::\n"
    masked = mask(text, "some_new_os")
    assert all(s not in masked for s in ("OddComm", "OddEnc", "OddShadow"))


def test_a_certificate_block_without_its_end_is_hidden_to_the_end() -> None:
    text = "crypto pki certificate chain X\n certificate ca 01\n  AABBCCDDTruncated\n  EEFF0011Cut"
    masked = mask(text, "cisco_ios")
    assert "Truncated" not in masked and "Cut" not in masked
    assert masked.startswith("crypto pki certificate chain X\n certificate ca 01\n")


def test_a_pem_blob_on_one_line_is_hidden_between_its_markers() -> None:
    text = 'certificate "-----BEGIN CERTIFICATE-----\\nMIIOneLineBody\\n-----END CERTIFICATE-----";\n'
    masked = mask(text, "juniper_junos")
    assert "MIIOneLineBody" not in masked
    assert "-----BEGIN CERTIFICATE-----" in masked and "-----END CERTIFICATE-----" in masked


def test_rules_are_validated_when_loaded() -> None:
    table = masking_table()
    assert "common" in table.sets
    bad: Any
    for bad in (
        {"sets": {"common": [{"name": "x", "pattern": "password (\\S+)"}]}, "platforms": {}},  # no secret group
        {"sets": {"common": [{"name": "x", "pattern": "(?P<secret>a", "begin": "b", "end": "c"}]}, "platforms": {}},
        {"sets": {"common": []}, "platforms": {"cisco_ios": ["nope"]}},
        {"sets": {"other": []}, "platforms": {}},
    ):
        with pytest.raises(ValueError):
            MaskingTable.model_validate(bad)


# Lines that once slipped through a rule: each platform's corpus must come out with none of its
# secrets, keep its non-secret words, and mask to itself a second time.
REGRESSION_IOS = """\
snmp-server host 10.20.0.31 vrf MGMT version 2c VrfTrapComm
snmp-server host 10.20.0.32 vrf MGMT informs version 2c VrfInformComm
snmp-server host 10.20.0.33 vrf MGMT public
snmp-server community "Jed Shared RO" RO
crypto keyring BRANCH-KR
 pre-shared-key address 10.9.9.9 key KeyringPsk-1
 pre-shared-key address 10.9.8.0 255.255.255.0 key 0 KeyringPsk-2
 pre-shared-key hostname hq.jeddah.example key KeyringPsk-3
interface Tunnel10
 ip nhrp authentication NhrpAuth7
 ip nhrp network-id 10
 ipv6 nhrp authentication NhrpAuth6
"""
REGRESSION_IOS_SECRETS = ["VrfTrapComm", "VrfInformComm", "Jed Shared", "Shared RO\"", "KeyringPsk-1",
                          "KeyringPsk-2", "KeyringPsk-3", "NhrpAuth7", "NhrpAuth6"]
REGRESSION_IOS_KEPT = ["snmp-server host 10.20.0.31 vrf MGMT version 2c <secret hidden>",
                       "snmp-server host 10.20.0.33 vrf MGMT public",
                       " pre-shared-key address 10.9.9.9 key <secret hidden>",
                       " pre-shared-key address 10.9.8.0 255.255.255.0 key 0 <secret hidden>",
                       " pre-shared-key hostname hq.jeddah.example key <secret hidden>",
                       " ip nhrp network-id 10", '" RO\n']

REGRESSION_XR = """\
username netops
 group root-lr
 secret 10 $6$XrSaltValue$XrUserHashValue
!
tacacs-server host 10.20.0.10 port 49
 key 7 XrTacKey0822
!
radius-server host 10.20.0.11 auth-port 1812 acct-port 1813
 key 7 XrRadKey1511
!
router bgp 65001
 neighbor 10.0.0.2
  remote-as 65000
  password encrypted XrBgpPw0458
!
"""
REGRESSION_XR_SECRETS = ["XrUserHashValue", "XrSaltValue", "XrTacKey0822", "XrRadKey1511", "XrBgpPw0458"]
REGRESSION_XR_KEPT = ["tacacs-server host 10.20.0.10 port 49\n key 7 <secret hidden>", " group root-lr",
                      " secret 10 <secret hidden>", "  remote-as 65000", "  password encrypted <secret hidden>"]

REGRESSION_PROCURVE = """\
snmp-server community "public" unrestricted
snmp-server host 10.20.0.30 community "HpHostComm" trap-level critical
snmp-server host 10.20.0.31 "HpHostComm2" Not-INFO
snmp-server host 10.20.0.32 community HpHostComm3
snmp-server host 10.20.0.33 community "public"
"""
REGRESSION_PROCURVE_SECRETS = ["HpHostComm", "HpHostComm2", "HpHostComm3"]
REGRESSION_PROCURVE_KEPT = ['snmp-server host 10.20.0.30 community "<secret hidden>" trap-level critical',
                            'snmp-server host 10.20.0.31 "<secret hidden>" Not-INFO',
                            'snmp-server host 10.20.0.33 community "public"']

REGRESSION_AOSCX = """\
snmp-server host 10.20.0.30 trap version v2c community CxHostComm
snmp-server host 10.20.0.31 inform version v2c community CxInformComm port 162 vrf mgmt
snmp-server host 10.20.0.32 trap version v2c community public
"""
REGRESSION_AOSCX_SECRETS = ["CxHostComm", "CxInformComm"]
REGRESSION_AOSCX_KEPT = ["snmp-server host 10.20.0.30 trap version v2c community <secret hidden>",
                         "community <secret hidden> port 162 vrf mgmt", "community public"]

REGRESSION_ROUTEROS = """\
/interface l2tp-server server
set enabled=yes ipsec-secret=RosL2tpIpsec use-ipsec=required
/interface eoip
add ipsec-secret="Ros Eoip Secret" name=eoip-hq remote-address=10.0.0.1 tunnel-id=7
/interface wireguard peers
add interface=wg-hq public-key="RosWgPublicKeyStays=" allowed-address=10.99.0.0/24
/system ntp key
add key=RosNtpKeyValue key-id=1
/tool e-mail
set from=noc@jeddah.example server=10.20.0.25 user=noc password=RosMailPass
"""
REGRESSION_ROUTEROS_SECRETS = ["RosL2tpIpsec", "Ros Eoip Secret", "RosNtpKeyValue", "RosMailPass"]
REGRESSION_ROUTEROS_KEPT = ["set enabled=yes ipsec-secret=<secret hidden> use-ipsec=required",
                            'public-key="RosWgPublicKeyStays="', "add key=<secret hidden> key-id=1",
                            "name=eoip-hq remote-address=10.0.0.1 tunnel-id=7"]

REGRESSIONS = {
    "cisco_ios": (REGRESSION_IOS, REGRESSION_IOS_SECRETS, REGRESSION_IOS_KEPT),
    "cisco_xe": (REGRESSION_IOS, REGRESSION_IOS_SECRETS, REGRESSION_IOS_KEPT),
    "cisco_xr": (REGRESSION_XR, REGRESSION_XR_SECRETS, REGRESSION_XR_KEPT),
    "hp_procurve": (REGRESSION_PROCURVE, REGRESSION_PROCURVE_SECRETS, REGRESSION_PROCURVE_KEPT),
    "aruba_aoscx": (REGRESSION_AOSCX, REGRESSION_AOSCX_SECRETS, REGRESSION_AOSCX_KEPT),
    "mikrotik_routeros": (REGRESSION_ROUTEROS, REGRESSION_ROUTEROS_SECRETS, REGRESSION_ROUTEROS_KEPT),
}


@pytest.mark.parametrize("device_type", sorted(REGRESSIONS))
def test_no_known_secret_survives_the_regression_corpus(device_type: str) -> None:
    text, secrets, kept = REGRESSIONS[device_type]
    masked = mask(text, device_type)
    leaked = [s for s in secrets if s in masked]
    assert not leaked, f"{device_type} leaks {leaked}"
    missing = [k for k in kept if k not in masked]
    assert not missing, f"{device_type} lost {missing}"
    assert mask(masked, device_type) == masked
    assert secret_lines(masked, device_type) == []
