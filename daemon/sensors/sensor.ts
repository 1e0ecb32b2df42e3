import type { EventEmitter } from 'node:events';
import type { SensorEvent, SensorTroubleEvent } from '../events.js';

/** what a sensor reports about itself when it can no longer see everything */
export interface SensorTrouble {
  sensor: string;
  reason: SensorTroubleEvent['reason'];
  detail: string;
  lost?: number;
  /** died: the signal that killed its process (sent by whom, the kernel does not say) */
  signal?: string;
}

export interface SensorHealth {
  name: string;
  running: boolean;
  restarts: number;
  lost: number;
  events: number;
  detail?: string;
}

/**
 * A sensor turns the host into typed events.
 * Events: 'event' (SensorEvent), 'trouble' (SensorTrouble). It never throws after start().
 */
export interface Sensor extends EventEmitter {
  readonly name: string;
  /** resolves once the sensor sees events (for eBPF: probes attached) */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** pids of the processes the sensor runs (they are protected like the daemon) */
  ownPids(): number[];
  health(): SensorHealth;
}

export type SensorEventListener = (ev: SensorEvent) => void;

/** a sensor that could not start: the command stops with this message (exit 2), nothing watched */
export class SensorStartError extends Error {}
