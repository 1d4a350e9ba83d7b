/** IPv4 (20) + TCP (20) + timestamp option (12): a 1448-byte MSS fills a 1500-byte MTU. */
export const TCP_IP_HEADER_BYTES = 52;

/** A SACK option of `blocks` blocks: two NOPs, kind and length, 8 bytes per block (RFC 2018 §3). */
export const sackOptionBytes = (blocks: number): number => (blocks === 0 ? 0 : 4 + 8 * blocks);

/** What a segment takes in a plug (the netbuffer's, and the guest NIC's count of it): payload and TCP/IP headers. */
export const plugBytesOf = (seg: { readonly payload: Uint8Array }): number => seg.payload.length + TCP_IP_HEADER_BYTES;

/**
 * The most payload one TCP segment can carry: an IPv4 packet's 65,535 bytes
 * less 20 of IP and 20 of TCP header (TSO's largest segment too). It is the
 * largest `tcp.mssBytes`; a segment that carries more is forged.
 */
export const MAX_SEGMENT_PAYLOAD_BYTES = 65_535 - 40;

/**
 * The highest sequence number, ACK or SACK edge a segment may carry. Sequence
 * numbers here are positions in the stream (from an ISN below 2^32, never
 * wrapped), so this is 9 PB into any connection; below 2^53 by 2^32, the
 * sums made of one (its end past payload, SYN and FIN; an ACK plus a scaled
 * window of at most 2^30) stay safe integers. A segment past it is refused
 * as malformed: the acker added the client's length to such a sequence
 * number and crashed on the unsafe result.
 */
export const MAX_STREAM_POSITION = Number.MAX_SAFE_INTEGER - 2 ** 32;
