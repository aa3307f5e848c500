/** Identity header sets exactly as each platform's documentation shows them, for the bootstrap tests. */

export const ONIE_HEADERS = {
  'user-agent': 'onie/1.0 (Linux-3.2.69-onie+2016.05.00.03; BusyBox-v1.20.2)',
  'onie-serial-number': 'TW68HF500N',
  'onie-eth-addr': '14:02:EC:2D:F0:00',
  'onie-vendor-id': '259',
  'onie-machine': 'accton_as4610_54',
  'onie-machine-rev': '0',
  'onie-arch': 'arm',
  'onie-security-key': '',
  'onie-operation': 'os-install',
  'onie-version': '2016.05.00.03',
};
export const SONIC_HEADERS = {
  'user-agent': 'SONiC-ZTP/0.1',
  'product-name': 'E1031',
  'serial-number': 'E1031B2F035A17GD020',
  'base-mac-address': '00:E0:EC:38:50:FB',
  'sonic-version': 'SONiC.201811.0-20190315.181511',
};
export const CUMULUS_HEADERS = {
  'user-agent': 'CumulusLinux-AutoProvision/0.4',
  'cumulus-arch': 'x86_64',
  'cumulus-build': '3.7.3-5c6829a-201309251712-final',
  'cumulus-license-installed': '1',
  'cumulus-manufacturer': 'odm',
  'cumulus-productname': 'switch_model',
  'cumulus-serial': 'XYZ123004',
  'cumulus-base-mac': '44:38:39:FF:40:94',
  'cumulus-mgmt-mac': '44:38:39:FF:00:00',
  'cumulus-version': '3.7.3',
  'cumulus-prov-count': '0',
  'cumulus-prov-max': '32',
};
