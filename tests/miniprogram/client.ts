// A mini-program-style client of the main routes, over types generated from schemas/openapi.json
// (`openapi-typescript`, into generated/api.d.ts) and `openapi-fetch`. It is only type-checked, in
// strict mode: a spec change that would break the mini-program's code breaks this file.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/api";

type Issue = components["schemas"]["Issue"];
type Meta = components["schemas"]["Meta"];

export function connect(baseUrl: string, token?: string) {
  return createClient<paths>({ baseUrl, headers: token ? { Authorization: `Bearer ${token}` } : {} });
}

type Api = ReturnType<typeof connect>;

export async function signIn(api: Api, code: string): Promise<string> {
  const { data, error } = await api.POST("/api/v1/auth/wechat-login", { body: { code } });
  if (error) throw new Error(error.message ?? "login failed");
  return data.access_token ?? "";
}

export async function loadMeta(api: Api): Promise<Meta> {
  const { data, error } = await api.GET("/api/v1/meta");
  if (error || !data) throw new Error("meta unavailable");
  return data;
}

export function statusLabel(meta: Meta, issue: Issue): string {
  return meta.labels?.issue_status?.[issue.status ?? ""] ?? issue.status ?? "";
}

export async function raiseIssue(api: Api, studioId: string, photoIds: string[]): Promise<Issue> {
  // Only what the form asks for: address, anonymity, phone and location are optional.
  const { data, error } = await api.POST("/api/v1/issues", {
    body: { studio_id: studioId, title: "路灯不亮", category: "safety", description: "小区东门路灯坏了一周", attachments: photoIds },
    params: { header: { "Idempotency-Key": "k-1" } },
  });
  if (error) throw new Error(`${error.error}: ${error.message}`);
  return data;
}

export function describe(issue: Issue): string {
  const where = issue.location ? `${issue.location.lat.toFixed(4)},${issue.location.lng.toFixed(4)}` : "";
  const done = issue.resolution?.summary ?? "";
  const rated = issue.feedback?.rating ?? "";
  const photos = (issue.attachments ?? []).map((a) => a.thumb_url ?? a.url).join(" ");
  const buttons = (issue.allowed_actions ?? []).join(",");
  return [issue.number, where, done, rated, photos, buttons, issue.supported_by_me ? "已附议" : ""].join(" ");
}

export async function boardPage(api: Api, studio: string, cursor?: string) {
  const { data, response } = await api.GET("/api/v1/issues", {
    params: { query: { board: true, studio, page_size: 20, ...(cursor ? { cursor } : {}) } },
  });
  return { issues: data ?? [], next: response.headers.get("X-Next-Cursor") ?? undefined };
}

export async function act(api: Api, issue: Issue, action: "accept" | "resolve", note: string): Promise<Issue> {
  const { data, error } = await api.POST("/api/v1/issues/{issue_id}/actions", {
    params: { path: { issue_id: issue.id ?? "" }, header: {} },
    body: { action, note },
  });
  if (error) throw new Error(error.error ?? "action refused");
  return data;
}

export async function rate(api: Api, issue: Issue): Promise<Issue | undefined> {
  const { data, error } = await api.POST("/api/v1/issues/{issue_id}/feedback", {
    params: { path: { issue_id: issue.id ?? "" }, header: {} },
    body: { rating: "satisfied" },
  });
  if (error?.error === "invalid_transition") return undefined; // a declared 409, typed
  return data;
}

export async function support(api: Api, issueId: string): Promise<boolean> {
  const { data, error } = await api.POST("/api/v1/issues/{issue_id}/supports", { params: { path: { issue_id: issueId } } });
  if (error) return false; // 409 own_issue / issue_closed is declared
  return data.supported ?? false;
}

export async function badge(api: Api): Promise<number> {
  const { data } = await api.GET("/api/v1/notifications/unread-count");
  await api.POST("/api/v1/notifications/read-all");
  return data?.unread_count ?? 0;
}

export async function sessions(api: Api) {
  const { data } = await api.GET("/api/v1/consultations", { params: { query: { page_size: 10 } } });
  return (data ?? []).map((c) => `${c.topic ?? ""} ${c.starts_at ?? ""} ${c.minutes?.summary ?? ""}`);
}

export async function calendar(api: Api, id: string): Promise<Blob | undefined> {
  const { data } = await api.GET("/api/v1/consultations/{consultation_id}.ics", {
    params: { path: { consultation_id: id } },
    parseAs: "blob",
  });
  return data;
}
