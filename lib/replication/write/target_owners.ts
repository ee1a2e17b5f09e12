/**
 * Which source stream writes each target stream. Two source streams may map
 * to one target key (two DBs with TARGET_REDIS_DB fixed, a prefix that
 * makes keys meet): the target must never mix their entries, so one owns
 * it and the other is skipped; the one that wrote it before (it has the
 * consumer group) keeps it across restarts.
 *
 * @module
 */
import { RedisReplyError } from "../../errors.ts";
import { parseFlatMap, type RedisClient, text } from "../../redis/mod.ts";
import { groupBy } from "../_group_by.ts";
import type { StreamRef } from "../stream/stream_ref.ts";

/** The owners of the target streams, by target id. */
export class TargetOwners {
  readonly #control: RedisClient;
  readonly #group: string;
  readonly #owners = new Map<string, StreamRef>();

  constructor(control: RedisClient, options: { group: string }) {
    this.#control = control;
    this.#group = options.group;
  }

  /** Makes `ref` the owner of its target stream; returns the other owner if there is one. */
  claim(ref: StreamRef): StreamRef | undefined {
    const owner = this.#owners.get(ref.targetId);
    if (owner !== undefined && owner.id !== ref.id) return owner;
    this.#owners.set(ref.targetId, ref);
    return undefined;
  }

  /** `ref` no longer writes its target stream. */
  release(ref: StreamRef): void {
    if (this.#owners.get(ref.targetId)?.id === ref.id) this.#owners.delete(ref.targetId);
  }

  /**
   * Of streams that would share a target stream no stream owns now, puts
   * the one that already has the consumer group first: it wrote that target
   * stream before (before a restart, or before it ended), so it must keep
   * it, or the target would mix the entries of two streams. Without such a
   * stream the first found (lowest DB) wins, as on a first start.
   */
  async previousOwnersFirst(
    candidates: StreamRef[],
    options: { busy: (ref: StreamRef) => boolean },
  ): Promise<StreamRef[]> {
    const byTarget = groupBy(
      candidates.filter((ref) => !options.busy(ref) && !this.#owners.has(ref.targetId)),
      (ref) => ref.targetId,
    );
    const first = new Set<string>();
    for (const refs of byTarget.values()) {
      if (refs.length < 2) continue;
      for (const ref of refs) {
        if (await this.#hasGroup(ref)) {
          first.add(ref.id);
          break;
        }
      }
    }
    if (first.size === 0) return candidates;
    return [
      ...candidates.filter((r) => first.has(r.id)),
      ...candidates.filter((r) => !first.has(r.id)),
    ];
  }

  /** Whether the source stream has the consumer group (false when it cannot tell: no such key...). */
  async #hasGroup(ref: StreamRef): Promise<boolean> {
    try {
      const groups = await this.#control.send(ref.db, ["XINFO", "GROUPS", ref.key]);
      return Array.isArray(groups) &&
        groups.some((g) => text(parseFlatMap(g).get("name")) === this.#group);
    } catch (error) {
      if (error instanceof RedisReplyError) return false;
      throw error;
    }
  }
}
