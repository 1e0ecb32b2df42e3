// What every event carries: when, and which process acted.
export interface EventBase {
  time: number;
  /** the acting process (tgid) */
  pid: number;
  tid?: number;
  /** the acting process's uid, when the sensor reports it (signals): known even if it exits at once */
  uid?: number;
  /** kernel comm at the time of the event, when the sensor knows it */
  comm?: string;
}
