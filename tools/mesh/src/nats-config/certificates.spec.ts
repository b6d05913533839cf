import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createCertificateAuthority, issueCertificate } from './certificates';

describe('certificates', () => {
  const ca = createCertificateAuthority('mesh test CA');

  it('makes a self-signed CA that may sign certificates', () => {
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toContain('CN=mesh test CA');
    expect(cert.verify(cert.publicKey)).toBe(true);
  });

  it('issues a server certificate for its hosts, IPv4, IPv6 and names, signed by the CA, usable by routes too', () => {
    const server = new X509Certificate(
      issueCertificate(ca, { commonName: 'nats-server', usage: 'server', hosts: ['127.0.0.1', 'localhost', '::1', 'nats.internal'] }).certPem,
    );
    const caCert = new X509Certificate(ca.certPem);
    expect(server.ca).toBe(false);
    expect(server.checkIssued(caCert)).toBe(true);
    expect(server.verify(caCert.publicKey)).toBe(true);
    expect(server.subjectAltName).toBe('IP Address:127.0.0.1, DNS:localhost, IP Address:0:0:0:0:0:0:0:1, DNS:nats.internal');
    expect(server.checkHost('nats.internal')).toBe('nats.internal');
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
    // serverAuth, and clientAuth for the routes a node dials.
    expect(server.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  });

  it('issues client certificates with a key that matches and clientAuth usage only', () => {
    const issued = issueCertificate(ca, { commonName: 'router', usage: 'client' });
    const client = new X509Certificate(issued.certPem);
    expect(client.subject).toContain('CN=router');
    expect(client.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(client.checkPrivateKey(createPrivateKey(issued.keyPem))).toBe(true);
  });

  it('gives another CA certificates that this CA does not verify', () => {
    const other = createCertificateAuthority('another CA');
    const foreign = new X509Certificate(issueCertificate(other, { commonName: 'router', usage: 'client' }).certPem);
    expect(foreign.verify(new X509Certificate(ca.certPem).publicKey)).toBe(false);
  });
});
