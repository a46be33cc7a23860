export { certificateFingerprintSha256, certificateSummary, type CertificateSummary } from './certificates.js';
export {
  initDevPki,
  issueClientCertificate,
  pkiPaths,
  rotateServerCertificate,
  signClientCsr,
  writeClientBundle,
  type SignedCertificate,
  type InitDevPkiOptions,
  type IssuedClient,
  type PkiPaths,
} from './dev-pki.js';
export { PkiError, type PkiErrorCode } from './errors.js';
export { assertValidClientName } from './names.js';
export { parseCertificateRequest, type CertificateRequest } from './csr.js';
export { CertificateRejected, checkIssuedUnder, checkPinnedCertificate, certificateTimes } from './client-certificate.js';
export { canonicalSubject, inspectCertificate, parseSubjectArgument } from './x509-inspect.js';
