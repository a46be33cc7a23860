// Discover Versions (1.x §4.26 / 2.x §6.1.19): the versions both sides speak, in the client's order
// of preference; all of ours, newest first, when the client lists none (vCenter sends an empty payload).
import { integer, structure } from '../ttlv/build.js';
import { Tag } from '../kmip/registry/generated.js';
import { SUPPORTED_VERSIONS, isSupported, type ProtocolVersion } from '../kmip/version.js';
import { Fields } from '../kmip/fields.js';
import type { OperationHandler } from './context.js';

export const discoverVersions: OperationHandler = async (_ctx, payload) => {
  const asked: ProtocolVersion[] = payload.structs(Tag.ProtocolVersion).map((pv) => {
    const f = Fields.of(pv);
    return { major: f.requiredInteger(Tag.ProtocolVersionMajor), minor: f.requiredInteger(Tag.ProtocolVersionMinor) };
  });
  const answer = asked.length === 0 ? SUPPORTED_VERSIONS : asked.filter(isSupported);
  return answer.map((v) =>
    structure(Tag.ProtocolVersion, [integer(Tag.ProtocolVersionMajor, v.major), integer(Tag.ProtocolVersionMinor, v.minor)]),
  );
};
