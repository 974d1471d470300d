/**
 * RESP2/RESP3: the request parser (incremental, pipelined, bounded), the reply
 * model and its encoder, a reply decoder and a minimal client.
 *
 * @module
 */

export {
  array,
  bulk,
  error,
  fromPlain,
  integer,
  map,
  NIL,
  OK,
  type Reply,
  simple,
} from "./reply.ts";
export { encodeReply, formatDouble, ReplyWriter, type RespVersion } from "./encoder.ts";
export {
  DEFAULT_REQUEST_LIMITS,
  type ParseResult,
  type RequestLimits,
  RequestParser,
  splitInlineArgs,
  validateRequestLimits,
} from "./parser.ts";
export { ReplyParser, RespDecodeError, showReply } from "./reply_parser.ts";
export { ConnectionClosedError, encodeCommand, ReadTimeoutError, RespClient } from "./client.ts";
