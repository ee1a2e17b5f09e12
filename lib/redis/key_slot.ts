/**
 * Redis Cluster's hash slots: which of the 16,384 slots a key belongs to
 * (CRC16/XMODEM of the key, or of its hash tag).
 *
 * @module
 */

/** Hash slots of a Redis Cluster. */
export const CLUSTER_SLOTS = 16_384;
/** CRC16/XMODEM of `bytes` (the checksum Redis Cluster hashes keys with). */
export function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (let i = 0; i < bytes.length; i++) {
    crc ^= bytes[i] << 8;
    for (let b = 0; b < 8; b++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

/**
 * The cluster slot of `key`: the CRC16 of its hash tag (the content of the
 * first `{...}` with at least one byte between the braces), else of the
 * whole key, modulo 16,384.
 */
export function clusterSlot(key: Uint8Array): number {
  const open = key.indexOf(0x7b); // {
  if (open >= 0) {
    const close = key.indexOf(0x7d, open + 1); // }
    if (close > open + 1) return crc16(key.subarray(open + 1, close)) % CLUSTER_SLOTS;
  }
  return crc16(key) % CLUSTER_SLOTS;
}
