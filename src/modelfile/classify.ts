/**
 * File classification as modctl's `modelfile generate` does it (modelpack.md §4.4): by base name,
 * case-insensitive, first match wins in the order CONFIG → MODEL → CODE → DOC; a file that no
 * table names is a weight when larger than 128 MB, else code.
 */
import picomatch from 'picomatch';
import type { LayerKind } from '../oci/media-types.js';
import { formatByName } from '../formats/inspect-weights.js';

/** Extensions and name patterns per kind. `.ext` means `*.ext`; anything else is a glob on the base name. */
const TABLES: ReadonlyArray<[LayerKind, string]> = [
  [
    'config',
    `.json .jsonl .json5 .jsonc .yaml .yml .toml .ini .config .cfg .conf .properties .props .prop .xml .xsd .rng
     .modelcard .meta .tiktoken .hparams .params .hyperparams .wandb .mlflow .tensorboard
     *tokenizer.model* vocab.txt merges.txt added_tokens.txt spiece.model sentencepiece*.model sentencepiece*.vocab
     tiktoken.model chat_template.jinja config.json.*`,
  ],
  [
    'weight',
    `.safetensors .bin *.bin.* .pt .pth .mar .pte .pt2 .ptl .tflite .h5 .hdf .hdf5 .pb *.data-* .index
     .gguf *.gguf.* .ggml .ggmf .ggjt .q4_0 .q4_1 .q5_0 .q5_1 .q8_0 .f16 .f32 .ckpt .checkpoint .dist_ckpt
     tensor[0-9]*_[0-9]* .tensor .weights .state .embedding .vocab .ot .engine .trt .onnx *.onnx_data*
     .msgpack .model .pkl .pickle .keras .joblib .npy .npz .nc .mlmodel .coreml .mil .mleap .surml
     .llamafile *.llamafile.* .caffemodel .prototxt .dlc .circle .nb .arrow .parquet .ftz .ark .db`,
  ],
  [
    'code',
    `.py .ipynb .sh .patch .c .h .hxx .cpp .cc .cxx .c++ .hpp .hh .h++ .java .js .mjs .cjs .jsx .ts .tsx .go .rs
     .swift .rb .php .scala .kt .kts .r .m .mm .f .f90 .f95 .f03 .f08 .jl .lua .pl .pm .cs .vb .dart .groovy
     .elm .erl .hrl .ex .exs .hs .lhs .clj .cljs .cljc .cl .lisp .lsp .scm .ss .rkt .sql .psql .mysql .sqlite
     .zig .cu .cuh .bash .zsh .fish .csh .tcsh .ksh .ps1 .psm1 .psd1 .bat .cmd .vbs .wsf .applescript .scpt
     .awk .sed .expect .env *.env.* .env* Makefile* .dockerfile Dockerfile* .mk .cmake CMakeLists.txt .gradle
     build.gradle* settings.gradle* .sbt .mill .bazel .bzl BUILD* WORKSPACE* .buck BUCK* .ninja .gyp .gypi
     .waf wscript* package.json package-lock.json yarn.lock pnpm-lock.yaml requirements*.txt Pipfile*
     pyproject.toml setup.cfg tox.ini poetry.lock Cargo.toml Cargo.lock go.mod go.sum composer.json
     composer.lock Gemfile* .gemspec mix.exs mix.lock rebar.config rebar.lock .so .dll .dylib .lib .a`,
  ],
  [
    'doc',
    `.txt .md .pdf LICENSE* README* SETUP* *requirements* .log *.tfevents* .doc .docx .docm .dot .dotx .dotm
     .rtf .odt .ott .fodt .pages .wpd .xls .xlsx .xlsm .xlsb .xlt .xltx .xltm .ods .ots .fods .numbers .csv
     .ppt .pptx .pptm .pps .ppsx .ppsm .pot .potx .potm .odp .otp .fodp .key .epub .mobi .azw .azw3 .fb2
     .fb3 .lit .pdb .djvu .djv .html .htm .xhtml .mhtml .mht .xsl .xslt .tex .latex .ltx .bib .rst
     .asciidoc .adoc .textile .wiki .mediawiki .org .texi .texinfo .info .man .chm .hlp .xps .jpg .jpeg
     .png .gif .bmp .tiff .tif .ico .webp .heic .heif .hevc .svg .mp4 .mov .avi .mkv .webm .m4v .flv .wmv
     .mpg .mpeg`,
  ],
];

/** Unknown files larger than this are weights (modctl: 128·10⁶ bytes). */
export const WEIGHT_SIZE_THRESHOLD = 128_000_000;

const MATCHERS: ReadonlyArray<[LayerKind, (name: string) => boolean]> = TABLES.map(([kind, list]) => {
  const globs = list.split(/\s+/).filter(Boolean).map((p) => (p.startsWith('.') && !p.includes('*') ? `*${p}` : p));
  return [kind, picomatch(globs, { nocase: true, dot: true })];
});

const SKIP = picomatch(['.*', 'modelfile', '__pycache__', '*.pyc', '*.pyo', '*.pyd'], { nocase: true, dot: true });

export interface Classification {
  kind: LayerKind;
  /** False when no table named the file and its size decided. */
  known: boolean;
}

/** Classifies a file by its base name, and by its size when no table names it. */
export function classifyFile(baseName: string, size: number): Classification {
  for (const [kind, match] of MATCHERS) if (match(baseName)) return { kind, known: true };
  return { kind: size > WEIGHT_SIZE_THRESHOLD ? 'weight' : 'code', known: false };
}

/** Entries that generate skips unless `--include` rescues them: hidden files, Modelfile, Python caches. */
export function isSkippedByDefault(baseName: string): boolean {
  return SKIP(baseName);
}

/** The FORMAT a set of weight file names implies, when they all agree (by name only; generate reads the headers). */
export function inferFormat(weightNames: string[]): string | undefined {
  const formats = new Set(weightNames.map((n) => formatByName(n) ?? ''));
  if (formats.size !== 1) return undefined;
  const [f] = formats;
  return f || undefined;
}
