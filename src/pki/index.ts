export { certificateFingerprintSha256, certificateSummary, type CertificateSummary } from './certificates.js';
export {
  initDevPki,
  issueClientCertificate,
  pkiPaths,
  writeClientBundle,
  type InitDevPkiOptions,
  type IssuedClient,
  type PkiPaths,
} from './dev-pki.js';
export { PkiError, type PkiErrorCode } from './errors.js';
export { assertValidClientName } from './names.js';
