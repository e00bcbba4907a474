/**
 * Throw-away certificates for tests, made with the `openssl` command: a CA, a server
 * certificate for 127.0.0.1/localhost and a client certificate, all signed by the CA,
 * in a temporary directory that close() (or `await using`) removes.
 *
 *   await using certs = await makeCerts();
 *   await using cluster = await startEtcd({ tls: certs });
 *
 * Binary: `openssl` from PATH or $OPENSSL_BIN. A missing openssl is an error that
 * says so (tests fail rather than skip).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const OPENSSL_BIN = process.env['OPENSSL_BIN'] ?? 'openssl';

export interface TlsFiles extends AsyncDisposable {
  readonly dir: string;
  /** CA certificate (PEM): trusted by etcd for client certificates and by clients for etcd's. */
  readonly ca: string;
  /** etcd's certificate and key: SAN IP:127.0.0.1, DNS:localhost. */
  readonly serverCert: string;
  readonly serverKey: string;
  /** A client certificate (CN locked-client) and its key, for --client-cert-auth. */
  readonly clientCert: string;
  readonly clientKey: string;
  close(): Promise<void>;
}

function openssl(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(OPENSSL_BIN, args, { cwd, timeout: 30_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      reject(
        new Error(
          missing
            ? `the TLS tests need the openssl command, not found as '${OPENSSL_BIN}' (install the openssl package, or set OPENSSL_BIN)`
            : `openssl ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`,
        ),
      );
    });
  });
}

/** A CA, a server certificate (127.0.0.1, localhost) and a client certificate, valid for a day. */
export async function makeCerts(): Promise<TlsFiles> {
  const dir = await mkdtemp(join(tmpdir(), 'locked-tls-'));
  try {
    await openssl(
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=locked test CA'],
      dir,
    );
    const leaf = async (name: string, cn: string, ext: string): Promise<void> => {
      await writeFile(join(dir, `${name}.ext`), ext);
      await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
      await openssl(
        [
          'x509',
          '-req',
          '-in',
          `${name}.csr`,
          '-CA',
          'ca.crt',
          '-CAkey',
          'ca.key',
          '-CAcreateserial',
          '-out',
          `${name}.crt`,
          '-days',
          '1',
          '-extfile',
          `${name}.ext`,
        ],
        dir,
      );
    };
    await leaf('server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
    await leaf('client', 'locked-client', 'extendedKeyUsage=clientAuth\n');
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const close = (): Promise<void> => rm(dir, { recursive: true, force: true });
  return {
    dir,
    ca: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
    close,
    [Symbol.asyncDispose]: close,
  };
}
