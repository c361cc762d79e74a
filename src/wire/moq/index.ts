export {
  MAX_MOQ_STRING,
  MOQT_DRAFT_14,
  MOQ_LITE_03_PROTOCOL,
  MoqLiteData,
  MoqLiteStream,
  MoqLiteVersion,
  MoqStreamReader,
  encodeMoqStreamStart,
  frameMoqMessage,
  frameMoqtMessage,
  type MoqLiteDraft,
  type MoqStreamReaderOptions,
} from './message.js';
export {
  MAX_MOQ_SETUP_PARAMETERS,
  MAX_MOQ_SETUP_VERSIONS,
  MoqSetupParameter,
  decodeMoqClientSetup,
  decodeMoqServerSetup,
  encodeMoqClientSetup,
  encodeMoqServerSetup,
  type MoqClientSetup,
  type MoqServerSetup,
  type MoqSetupParameters,
} from './setup.js';
export {
  MAX_MOQ_ANNOUNCE_INIT,
  MAX_MOQ_HOPS,
  decodeMoqAnnounce,
  decodeMoqAnnounceInit,
  decodeMoqAnnouncePlease,
  encodeMoqAnnounce,
  encodeMoqAnnounceInit,
  encodeMoqAnnouncePlease,
  type MoqAnnounce,
} from './announce.js';
export {
  MOQ_SUBSCRIBE_OK_TYPE,
  decodeMoqSubscribe,
  decodeMoqSubscribeOk,
  decodeMoqSubscribeUpdate,
  encodeMoqSubscribe,
  encodeMoqSubscribeOk,
  encodeMoqSubscribeUpdate,
  type MoqDelivery,
  type MoqSubscribe,
} from './subscribe.js';
export {
  decodeMoqGroup,
  encodeMoqFrameHeader,
  encodeMoqGroup,
  encodeMoqGroupStreamStart,
  type MoqGroup,
} from './group.js';
export {
  MAX_MOQT_NAMESPACE_FIELDS,
  MAX_MOQT_PARAMETERS,
  MOQT_16_PROTOCOL,
  MOQT_DRAFT_16,
  MoqtMessage,
  frameMoqtControl,
  type MoqtParameters,
} from './moqt-parameters.js';
export { decodeMoqtSetup, encodeMoqtSetup } from './moqt-setup.js';
export {
  MoqtRequestError,
  decodeMoqtRequestError,
  decodeMoqtRequestId,
  decodeMoqtRequestOk,
  encodeMoqtRequestError,
  encodeMoqtRequestId,
  encodeMoqtRequestOk,
  type MoqtRequestErrorMessage,
  type MoqtRequestOk,
} from './moqt-request.js';
export {
  MoqtParameter,
  MoqtPublishDone,
  decodeMoqtFilter,
  decodeMoqtPublishDone,
  decodeMoqtSubscribe,
  decodeMoqtSubscribeOk,
  encodeMoqtFilter,
  encodeMoqtPublishDone,
  encodeMoqtSubscribe,
  encodeMoqtSubscribeOk,
  type MoqtFilter,
  type MoqtPublishDoneMessage,
  type MoqtSubscribe,
  type MoqtSubscribeOk,
} from './moqt-subscribe.js';
export {
  decodeMoqtNamespaceSuffix,
  decodeMoqtSubscribeNamespace,
  encodeMoqtNamespaceSuffix,
  encodeMoqtSubscribeNamespace,
  type MoqtSubscribeNamespace,
} from './moqt-namespace.js';
export {
  MAX_MOQT_OBJECT,
  decodeMoqtSubgroupHeader,
  decodeMoqtSubgroupStream,
  encodeMoqtObjectHeader,
  encodeMoqtSubgroupHeader,
  moqtSubgroupType,
  type MoqtObject,
  type MoqtSubgroupHeader,
} from './moqt-object.js';
