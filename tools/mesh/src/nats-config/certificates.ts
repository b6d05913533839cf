/**
 * A private certificate authority for NATS TLS: a CA, a server certificate
 * for nats-server and a client certificate per identity (mutual TLS).
 * ECDSA P-256 with SHA-256, built with node:crypto and a small DER encoder,
 * so nothing is installed for it. Tests use it to make certificates of
 * another CA, too.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { bitString, boolean, explicit, implicit, integer, namedBits, octetString, oid, sequence, set, time, utf8String } from './der';

export interface IssuedCertificate {
  /** PEM of the certificate. */
  certPem: string;
  /** PEM (PKCS#8) of its private key. */
  keyPem: string;
}

export interface CertificateAuthority extends IssuedCertificate {
  commonName: string;
  /** @internal what issuing needs */
  readonly privateKey: KeyObject;
  readonly keyId: Buffer;
}

export type CertificateUsage = 'server' | 'client';

export interface IssueOptions {
  commonName: string;
  usage: CertificateUsage;
  /** Server certificates: the host names and IP addresses it is valid for. */
  hosts?: readonly string[];
  validDays?: number;
}

const Oid = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

/** KeyUsage bits (RFC 5280 4.2.1.3). */
const KeyUsageBit = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

const DayMs = 86_400_000;
/** Issued certificates start an hour back, so a clock a little behind still accepts them. */
const ClockSkewMs = 3_600_000;

function name(commonName: string): Buffer {
  const rdn = (type: string, value: string) => set(sequence(oid(type), utf8String(value)));
  return sequence(rdn(Oid.organization, 'nats event mesh'), rdn(Oid.commonName, commonName));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));
}

/** IPv4 or IPv6 text as the 4 or 16 bytes a subjectAltName holds. */
function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const groups = (s: string | undefined) => (s ? s.split(':') : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.concat(all.map((g) => Buffer.from(g.padStart(4, '0'), 'hex')));
}

function subjectAltName(hosts: readonly string[]): Buffer {
  return sequence(...hosts.map((h) => (isIP(h) ? implicit(7, ipBytes(h)) : implicit(2, Buffer.from(h, 'ascii')))));
}

function newKey(): { privateKey: KeyObject; spki: Buffer; keyId: Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return { privateKey, spki, keyId: createHash('sha1').update(spki).digest() };
}

function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

interface Draft {
  subject: string;
  issuer: string;
  spki: Buffer;
  validDays: number;
  extensions: Buffer[];
  signer: KeyObject;
}

function certificate(d: Draft): string {
  const algorithm = sequence(oid(Oid.ecdsaWithSha256));
  // A positive serial of 16 random bytes (RFC 5280: at most 20 octets).
  const serial = randomBytes(16);
  serial[0] &= 0x7f;
  const now = Date.now();
  const tbs = sequence(
    explicit(0, integer(2)), // v3
    integer(serial),
    algorithm,
    name(d.issuer),
    sequence(time(new Date(now - ClockSkewMs)), time(new Date(now + d.validDays * DayMs))),
    name(d.subject),
    d.spki,
    explicit(3, sequence(...d.extensions)),
  );
  // node signs ECDSA as the DER ECDSA-Sig-Value that X.509 carries.
  const signature = sign('sha256', tbs, d.signer);
  return pem('CERTIFICATE', sequence(tbs, algorithm, bitString(signature)));
}

/** A new self-signed CA that may issue end-entity certificates only (path length 0). */
export function createCertificateAuthority(commonName: string, validDays = 3650): CertificateAuthority {
  const { privateKey, spki, keyId } = newKey();
  const certPem = certificate({
    subject: commonName,
    issuer: commonName,
    spki,
    validDays,
    signer: privateKey,
    extensions: [
      extension(Oid.basicConstraints, true, sequence(boolean(true), integer(0))),
      extension(Oid.keyUsage, true, namedBits([KeyUsageBit.digitalSignature, KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign])),
      extension(Oid.subjectKeyId, false, octetString(keyId)),
    ],
  });
  return { commonName, certPem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), privateKey, keyId };
}

/** A server or client certificate signed by `ca`, with a new key. */
export function issueCertificate(ca: CertificateAuthority, o: IssueOptions): IssuedCertificate {
  const { privateKey, spki, keyId } = newKey();
  const extensions = [
    extension(Oid.basicConstraints, true, sequence()),
    extension(Oid.keyUsage, true, namedBits([KeyUsageBit.digitalSignature])),
    // A NATS node also dials its cluster routes, and the node it dials verifies it as a client:
    // a server certificate serves both ways so routes can use TLS with verify.
    extension(Oid.extKeyUsage, false, o.usage === 'server' ? sequence(oid(Oid.serverAuth), oid(Oid.clientAuth)) : sequence(oid(Oid.clientAuth))),
    extension(Oid.subjectKeyId, false, octetString(keyId)),
    extension(Oid.authorityKeyId, false, sequence(implicit(0, ca.keyId))),
  ];
  if (o.hosts && o.hosts.length > 0) extensions.push(extension(Oid.subjectAltName, false, subjectAltName(o.hosts)));
  const certPem = certificate({ subject: o.commonName, issuer: ca.commonName, spki, validDays: o.validDays ?? 825, signer: ca.privateKey, extensions });
  return { certPem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}
