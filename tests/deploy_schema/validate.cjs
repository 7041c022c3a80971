// Validates Kubernetes objects against the official OpenAPI schemas, as compiled into the npm
// package kubernetes-models (one validator per kind, generated from Kubernetes' swagger.json).
//
// stdin: a JSON array of objects. stdout: a JSON array with one entry per object, in order:
// {"kind", "name", "errors": [...]}; an empty list means the object is valid. Exit 0 unless the
// input itself cannot be read.
//
// Two checks per object:
// - schema: types, required fields, enums and formats (kubernetes-models' validate());
// - unknown fields: the schemas do not forbid properties they do not name, so a misspelt field
//   (`readinesProbe`) passes them, and the API server then drops it or, under strict field
//   validation, rejects the object. The generated validator reads every property its schema
//   names, so running it over a proxy that records each property read shows which fields of the
//   object no schema knows.
"use strict";

const fs = require("node:fs");

// apiVersion "apps/v1" -> module "kubernetes-models/apps/v1"; the core group "v1" -> "kubernetes-models/v1".
function modelClass(apiVersion, kind) {
  let models;
  try {
    models = require(`kubernetes-models/${apiVersion}`);
  } catch {
    return null;
  }
  return Object.prototype.hasOwnProperty.call(models, kind) ? models[kind] : null;
}

// A deep proxy of `value` that records, per object, the property names that were read.
function tracked(value, reads) {
  if (value === null || typeof value !== "object") return value;
  const seen = new Set();
  reads.set(value, seen);
  const children = new Map();
  return new Proxy(value, {
    get(target, prop, receiver) {
      if (typeof prop === "string") seen.add(prop);
      const child = Reflect.get(target, prop, receiver);
      if (child === null || typeof child !== "object") return child;
      if (!children.has(prop)) children.set(prop, tracked(child, reads));
      return children.get(prop);
    },
  });
}

// Paths of the properties of `value` that were never read (arrays: their elements' properties).
function unread(value, reads, path, out) {
  if (value === null || typeof value !== "object") return out;
  const seen = reads.get(value);
  for (const key of Object.keys(value)) {
    const child = Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`;
    if (!Array.isArray(value) && seen && !seen.has(key)) {
      out.push(`unknown field ${child.slice(1)}`);
      continue;
    }
    unread(value[key], reads, child, out);
  }
  return out;
}

function check(object) {
  const kind = object && object.kind;
  const name = object && object.metadata ? object.metadata.name : undefined;
  const result = { kind, name, errors: [] };
  const Model = modelClass(object.apiVersion, kind);
  if (Model === null) {
    result.errors.push(`no schema for apiVersion ${object.apiVersion} kind ${kind}`);
    return result;
  }
  try {
    new Model(object).validate();
  } catch (error) {
    result.errors.push(`schema: ${error.message}`);
    return result;
  }
  const reads = new Map();
  try {
    Model.prototype.validate.call(tracked(object, reads));
  } catch (error) {
    result.errors.push(`schema (second pass): ${error.message}`);
    return result;
  }
  result.errors.push(...unread(object, reads, "", []));
  return result;
}

const objects = JSON.parse(fs.readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(objects.map(check)));
