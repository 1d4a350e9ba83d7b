export { LinkDirection, linkDirectionFor, replicationLinkFor, wireBytesOf, TCP_IP_HEADER_BYTES, CONTROL_HEADER_BYTES, type LinkOptions, type LinkStats, type LinkSide } from './link-direction.js';
