// Stage "image": the multi-arch ros_demo image, built with @pulumi/docker-build for every
// platform of the lab, pushed, and handed to the workloads by digest — so a rebuild rolls the
// pods and an unchanged build changes nothing. With `image.build: false`, the published image.
import * as dockerbuild from "@pulumi/docker-build";
import * as pulumi from "@pulumi/pulumi";
import { Distro, LabSettings } from "../config";
import { imageRegistry, parseImageReference } from "../common/image-reference";

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
  /** The build, when `image.build` is true. */
  public readonly build: dockerbuild.Image | undefined;

  constructor(name: string, args: RosDemoImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("rosfleet:image:RosDemo", name, {}, opts);
    const { image, distro } = args;
    if (!image.build) {
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
