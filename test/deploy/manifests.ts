/**
 * The deployment files as the deploy tests see them: the Kubernetes objects of a kustomization (rendered
 * by `kubectl kustomize` when kubectl is installed, else read from the files its `resources:` list), each
 * validated against the Kubernetes schemas and typed; the Dockerfile as text; compose.yaml parsed.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ConfigMap, Service } from "kubernetes-models/v1";
import { StatefulSet } from "kubernetes-models/apps/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { parse, parseAllDocuments } from "yaml";
import { PROTO_DIR } from "../../src/protocol/proto-files.js";

/** The repository root. */
export const REPO_ROOT = dirname(PROTO_DIR);
export const DEPLOY_DIR = join(REPO_ROOT, "deploy");

/** The objects of one kustomization, by kind; each kind's objects in file order. */
export interface Manifests {
  readonly configMaps: ConfigMap[];
  readonly services: Service[];
  readonly statefulSets: StatefulSet[];
  readonly podDisruptionBudgets: PodDisruptionBudget[];
  /** How they were rendered: "kubectl kustomize" or "files" (kubectl missing: resources read as they are). */
  readonly renderedBy: "kubectl kustomize" | "files";
}

/** True when `kubectl` runs here. */
export const hasKubectl: boolean = spawnSync("kubectl", ["version", "--client"], { stdio: "ignore" }).status === 0;

/**
 * Renders the kustomization in `dir` (relative to the repository root) and validates every object
 * against its schema; throws naming the object for an unknown kind or a schema violation.
 */
export function renderKustomization(dir: string): Manifests {
  const renderedBy = hasKubectl ? "kubectl kustomize" : "files";
  const texts = hasKubectl ? [execFileSync("kubectl", ["kustomize", join(REPO_ROOT, dir)], { encoding: "utf8" })] : resourceFiles(dir);
  const manifests: Manifests = { configMaps: [], services: [], statefulSets: [], podDisruptionBudgets: [], renderedBy };
  for (const text of texts) {
    for (const document of parseAllDocuments(text)) {
      if (document.errors.length > 0) throw new Error(`${dir}: ${document.errors[0]?.message}`);
      const object: unknown = document.toJS();
      if (object === null) continue;
      add(manifests, dir, object as RawObject);
    }
  }
  return manifests;
}

/** The texts of the files a kustomization lists under `resources:` (no transformers applied). */
function resourceFiles(dir: string): string[] {
  const kustomization = parse(readFileSync(join(REPO_ROOT, dir, "kustomization.yaml"), "utf8")) as { resources?: string[]; patches?: unknown };
  if (kustomization.patches !== undefined) throw new Error(`${dir} has patches: rendering it needs kubectl`);
  return (kustomization.resources ?? []).map((file) => readFileSync(join(REPO_ROOT, dir, file), "utf8"));
}

/** A raw object of a rendered manifest. */
type RawObject = { apiVersion?: string; kind?: string; metadata?: { name?: string } };

/** Validates one object against its kind's schema and files it under its kind. */
function add(manifests: Manifests, dir: string, object: RawObject): void {
  const key = `${object.apiVersion}/${object.kind}`;
  const name = `${dir}: ${object.kind} "${object.metadata?.name}"`;
  const validated = <T extends { validate(): void }>(model: T): T => {
    try {
      model.validate();
    } catch (error) {
      throw new Error(`${name} does not match the Kubernetes schema: ${(error as Error).message}`);
    }
    return model;
  };
  if (key === "v1/ConfigMap") manifests.configMaps.push(validated(new ConfigMap(object as ConstructorParameters<typeof ConfigMap>[0])));
  else if (key === "v1/Service") manifests.services.push(validated(new Service(object as ConstructorParameters<typeof Service>[0])));
  else if (key === "apps/v1/StatefulSet") manifests.statefulSets.push(validated(new StatefulSet(object as ConstructorParameters<typeof StatefulSet>[0])));
  else if (key === "policy/v1/PodDisruptionBudget") {
    manifests.podDisruptionBudgets.push(validated(new PodDisruptionBudget(object as ConstructorParameters<typeof PodDisruptionBudget>[0])));
  } else throw new Error(`${name}: kind ${key} is not expected in the raftq manifests (teach test/deploy/manifests.ts about it)`);
}

/** The one object in `objects` named `name`; fails the test's assertion message clearly otherwise. */
export function named<T extends { metadata?: { name?: string } }>(objects: readonly T[], name: string): T {
  const found = objects.filter((object) => object.metadata?.name === name);
  if (found.length !== 1) throw new Error(`expected one object named "${name}", found ${found.length}`);
  return found[0] as T;
}

/** A deploy file's text, by path relative to deploy/. */
export function deployFile(path: string): string {
  return readFileSync(join(DEPLOY_DIR, path), "utf8");
}

/** One service of compose.yaml, as far as the tests look at it. */
export interface ComposeService {
  readonly image?: string;
  readonly environment?: Record<string, string>;
  readonly ports?: string[];
  readonly volumes?: string[];
  readonly stop_grace_period?: string;
  readonly healthcheck?: { readonly test?: string[] };
}

/** deploy/compose.yaml parsed, with its `<<` merge keys resolved as Compose resolves them. */
export function composeFile(): { services: Record<string, ComposeService>; volumes?: Record<string, unknown> } {
  return parse(deployFile("compose.yaml"), { merge: true }) as { services: Record<string, ComposeService>; volumes?: Record<string, unknown> };
}
