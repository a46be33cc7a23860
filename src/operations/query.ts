// Query (1.4 §4.25 / 2.1 §6.1.37): what this server is and can do. Only functions the request's
// version defines are answered; the others are ignored, as the spec allows for unknown ones.
import { boolean, enumeration, structure, textString } from '../ttlv/build.js';
import type { TtlvItem } from '../ttlv/types.js';
import {
  ClientRegistrationMethod,
  DestroyAction,
  ENUM_INFO,
  ObjectType,
  ProfileName,
  QueryFunction,
  RNGAlgorithm,
  RNGMode,
  ShreddingAlgorithm,
  Tag,
  UnwrapMode,
} from '../kmip/registry/generated.js';
import { registryVersionBit, type ProtocolVersion } from '../kmip/version.js';
import type { OperationHandler } from './context.js';
import { supportedOperations } from './registry.js';
import { REGISTERED_OBJECT_TAGS } from './registered-objects.js';

const FUNCTION_INFO = ENUM_INFO.get('QueryFunction')!.values;

/** Profiles whose mandatory OASIS test cases kmipd passes (see kmip-spec-notes/conformance.md). */
const PROFILES_BY_VERSION: Record<string, readonly number[]> = {
  '1.0': [ProfileName.SymmetricKeyLifecycleServerKMIPV1_0],
  '1.1': [ProfileName.SymmetricKeyLifecycleServerKMIPV1_1],
  '1.2': [ProfileName.SymmetricKeyLifecycleServerKMIPV1_2],
  '1.3': [ProfileName.SymmetricKeyLifecycleServerKMIPV1_3],
  '1.4': [ProfileName.SymmetricKeyLifecycleServerKMIPV1_4],
};

function profilesUpTo(version: ProtocolVersion): number[] {
  return Object.entries(PROFILES_BY_VERSION)
    .filter(([v]) => { const [maj, min] = v.split('.').map(Number); return maj! < version.major || (maj === version.major && min! <= version.minor); })
    .flatMap(([, p]) => p);
}

function capabilities(): TtlvItem {
  return structure(Tag.CapabilityInformation, [
    boolean(Tag.StreamingCapability, false),
    boolean(Tag.AsynchronousCapability, false),
    boolean(Tag.AttestationCapability, false),
    boolean(Tag.BatchUndoCapability, true),
    boolean(Tag.BatchContinueCapability, true),
    enumeration(Tag.UnwrapMode, UnwrapMode.Unspecified),
    // Destroy overwrites and removes the wrapped key; attributes stay as the spec's tombstone.
    enumeration(Tag.DestroyAction, DestroyAction.KeyMaterialDeleted),
    enumeration(Tag.ShreddingAlgorithm, ShreddingAlgorithm.Unspecified),
    enumeration(Tag.RNGMode, RNGMode.Unspecified),
  ]);
}

export const query: OperationHandler = async (ctx, payload) => {
  const bit = registryVersionBit(ctx.version);
  const functions = new Set(payload.enumerations(Tag.QueryFunction).filter((f) => ((FUNCTION_INFO.get(f)?.versions ?? 0) & bit) !== 0));
  const out: TtlvItem[] = [];
  if (functions.has(QueryFunction.QueryOperations)) {
    for (const op of supportedOperations(ctx.version)) out.push(enumeration(Tag.Operation, op));
  }
  if (functions.has(QueryFunction.QueryObjects)) {
    for (const t of [ObjectType.SymmetricKey, ...REGISTERED_OBJECT_TAGS.keys()]) out.push(enumeration(Tag.ObjectType, t));
  }
  if (functions.has(QueryFunction.QueryServerInformation)) {
    out.push(textString(Tag.VendorIdentification, `${ctx.server.vendor} ${ctx.server.version}`));
    out.push(structure(Tag.ServerInformation, []));
  }
  if (functions.has(QueryFunction.QueryRNGs)) {
    // Keys come from the HSM's generator, which does not describe itself to us.
    out.push(structure(Tag.RNGParameters, [enumeration(Tag.RNGAlgorithm, RNGAlgorithm.Unspecified)]));
  }
  if (functions.has(QueryFunction.QueryProfiles)) {
    for (const p of profilesUpTo(ctx.version)) out.push(structure(Tag.ProfileInformation, [enumeration(Tag.ProfileName, p)]));
  }
  if (functions.has(QueryFunction.QueryCapabilities)) out.push(capabilities());
  if (functions.has(QueryFunction.QueryClientRegistrationMethods)) {
    // kmipd issues certificate + key, signs a client's CSR, or trusts a client's own certificate.
    for (const m of [ClientRegistrationMethod.ServerPreGenerated, ClientRegistrationMethod.ClientGenerated, ClientRegistrationMethod.ClientRegistered]) {
      out.push(enumeration(Tag.ClientRegistrationMethod, m));
    }
  }
  // Query Validations: kmipd holds no validation (e.g. FIPS 140) of its own, so it lists none.
  return out;
};
