export {
  MAX_MOQ_STRING,
  MOQT_DRAFT_14,
  MoqLiteData,
  MoqLiteStream,
  MoqLiteVersion,
  MoqStreamReader,
  encodeMoqStreamStart,
  frameMoqMessage,
  frameMoqtMessage,
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
  decodeMoqAnnounce,
  decodeMoqAnnounceInit,
  decodeMoqAnnouncePlease,
  encodeMoqAnnounce,
  encodeMoqAnnounceInit,
  encodeMoqAnnouncePlease,
  type MoqAnnounce,
} from './announce.js';
export {
  decodeMoqSubscribe,
  decodeMoqSubscribeOk,
  encodeMoqSubscribe,
  encodeMoqSubscribeOk,
  type MoqSubscribe,
} from './subscribe.js';
export {
  decodeMoqGroup,
  encodeMoqFrameHeader,
  encodeMoqGroup,
  encodeMoqGroupStreamStart,
  type MoqGroup,
} from './group.js';
