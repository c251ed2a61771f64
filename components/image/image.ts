// Stage "image": the multi-arch ros_demo image, built with @pulumi/docker-build for every
// platform of the lab, pushed, and handed to the workloads by digest — so a rebuild rolls the
// pods and an unchanged build changes nothing. With `image.build: false`, the published image;
// in a lab of one machine with no `image.repository`, built by Docker and imported into k3s
// (imported.ts).
import * as dockerbuild from "@pulumi/docker-build";
import * as pulumi from "@pulumi/pulumi";
import { Distro, LabSettings } from "../config";
import { imageRegistry, parseImageReference } from "../common/image-reference";
import { ImageHost, importImage } from "./imported";
import type { Step } from "../machine/step";

/** Build context, relative to the project directory (where pulumi runs the program), so the
 * state holds the same path on every laptop. */
export const CONTEXT_DIR = "images/ros_demo";

export interface RosDemoImageArgs {
  /** `image.*` of the stack config. */
  readonly image: LabSettings["image"];
  /** `ros.distro`: the base image and the demo packages. */
  readonly distro: Distro;
  /** `registryUsername`; with `password`, the push credentials. */
  readonly registryUsername: string | undefined;
  /** `registryPassword` (secret). */
  readonly registryPassword: pulumi.Input<string> | undefined;
  /** The machine and k3s install the image is imported into (`image.importInto`). */
  readonly host?: ImageHost;
}

/** The tag a build is pushed under; the digest is what workloads use. */
export const buildTag = (repository: string, distro: Distro): string => `${repository}:${distro}`;
/** Where the registry build cache is kept. */
export const cacheRef = (repository: string, distro: Distro): string =>
  `${repository}:buildcache-${distro}`;

/** The ros_demo image (`rosfleet:image:RosDemo`). */
export class RosDemoImage extends pulumi.ComponentResource {
  /** What every ROS container runs: `repo:tag@sha256:…` when built. */
  public readonly ref: pulumi.Output<string>;
  /** The build, when `image.build` is true and the image is pushed. */
  public readonly build: dockerbuild.Image | undefined;
  /** The build and import on the lab's one machine, when `image.importInto` is set. */
  public readonly imported: Step | undefined;

  constructor(name: string, args: RosDemoImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("rosfleet:image:RosDemo", name, {}, opts);
    const { image, distro } = args;
    this.imported = undefined;
    if (image.importInto !== undefined) {
      if (args.host === undefined)
        throw new Error(`the k3s install on ${image.importInto} is needed to import the image`);
      this.build = undefined;
      const imported = importImage(
        `${name}-import`,
        { host: args.host, repository: image.repository, distro },
        CONTEXT_DIR,
        { parent: this },
      );
      this.imported = imported.step;
      this.ref = imported.ref;
    } else if (!image.build) {
      this.build = undefined;
      this.ref = pulumi.output(image.repository);
      if (parseImageReference(image.repository)?.digest === undefined)
        void pulumi.log.warn(
          `image.repository ${image.repository} has no digest: pods will not roll when its tag moves; pin it as <repository>@sha256:<digest>`,
          this,
        );
    } else {
      const registry = imageRegistry(image.repository);
      const credentials =
        args.registryUsername === undefined || args.registryPassword === undefined
          ? []
          : [
              {
                address: registry,
                username: args.registryUsername,
                password: pulumi.secret(args.registryPassword),
              },
            ];
      const cache = cacheRef(image.repository, distro);
      this.build = new dockerbuild.Image(
        `${name}-build`,
        {
          push: true,
          platforms: [...image.platforms],
          context: { location: CONTEXT_DIR },
          dockerfile: { location: `${CONTEXT_DIR}/Dockerfile` },
          buildArgs: { ROS_DISTRO: distro },
          tags: [buildTag(image.repository, distro)],
          registries: credentials,
          ...(image.cache
            ? {
                cacheFrom: [{ registry: { ref: cache } }],
                // A cache that cannot be written must not fail the build.
                cacheTo: [{ registry: { ref: cache, mode: "max", ignoreError: true } }],
              }
            : {}),
          ...(image.builder === undefined ? {} : { builder: { name: image.builder } }),
          // Preview stays fast and offline; the build runs during `pulumi up`.
          buildOnPreview: false,
        },
        { parent: this },
      );
      this.ref = this.build.ref;
    }
    this.registerOutputs({ ref: this.ref });
  }
}
