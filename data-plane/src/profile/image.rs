//! Turning an upload into an avatar: the type is decided by the content
//! (never the name or the declared type), only JPEG, PNG, GIF and WebP are
//! read, dimensions are checked from the header before anything is decoded
//! (so a decompression bomb fails fast), and the picture is drawn again
//! into a new file (metadata such as EXIF does not survive), at most 512
//! pixels a side: JPEG stays JPEG, the others become PNG.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// The largest upload, in bytes.
pub const MAX_BYTES: usize = 5 * 1024 * 1024;
/// The largest picture read, a side.
const MAX_SIDE: u32 = 8192;
/// The most memory a decode may take.
const MAX_ALLOC: u64 = 128 * 1024 * 1024;
/// An avatar's largest side once stored.
pub const AVATAR_SIDE: u32 = 512;

/// Why an upload is not an avatar.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not one of the four formats (by content).
    Unsupported,
    /// Wider or taller than allowed, or too much memory to decode.
    TooLarge,
    /// Says it is an image of a known format, but does not decode.
    Invalid,
}

/// A stored avatar: the bytes, their content type and file extension.
pub struct Avatar {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub extension: &'static str,
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    limits
}

fn reader(data: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, Refusal> {
    let mut reader = ImageReader::new(Cursor::new(data))
        .with_guessed_format()
        .map_err(|_| Refusal::Unsupported)?;
    reader.limits(limits());
    Ok(reader)
}

fn refusal(e: image::ImageError) -> Refusal {
    match e {
        image::ImageError::Limits(_) => Refusal::TooLarge,
        _ => Refusal::Invalid,
    }
}

/// Decodes, bounds and re-encodes `data` (CPU work: call it off the async
/// runtime).
pub fn process(data: &[u8]) -> Result<Avatar, Refusal> {
    let format = reader(data)?.format();
    let format = match format {
        Some(f @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP)) => {
            f
        }
        _ => return Err(Refusal::Unsupported),
    };
    // The header first: a huge canvas is refused before any pixel is read.
    let (width, height) = reader(data)?.into_dimensions().map_err(refusal)?;
    if width == 0 || height == 0 {
        return Err(Refusal::Invalid);
    }
    let picture = reader(data)?.decode().map_err(refusal)?;
    let picture = if width > AVATAR_SIDE || height > AVATAR_SIDE {
        picture.thumbnail(AVATAR_SIDE, AVATAR_SIDE)
    } else {
        picture
    };
    let mut bytes = Vec::new();
    if format == ImageFormat::Jpeg {
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 85);
        DynamicImage::ImageRgb8(picture.to_rgb8())
            .write_with_encoder(encoder)
            .map_err(|_| Refusal::Invalid)?;
        Ok(Avatar {
            bytes,
            content_type: "image/jpeg",
            extension: "jpg",
        })
    } else {
        DynamicImage::ImageRgba8(picture.to_rgba8())
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .map_err(|_| Refusal::Invalid)?;
        Ok(Avatar {
            bytes,
            content_type: "image/png",
            extension: "png",
        })
    }
}

/// The content type of a stored avatar, by the extension it was stored
/// under (the server named it; nothing from the upload).
pub fn content_type_of(extension: &str) -> Option<&'static str> {
    match extension {
        "jpg" => Some("image/jpeg"),
        "png" => Some("image/png"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(format: ImageFormat, w: u32, h: u32) -> Vec<u8> {
        let picture = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            w,
            h,
            image::Rgba([200, 10, 10, 255]),
        ));
        let picture = if format == ImageFormat::Jpeg {
            DynamicImage::ImageRgb8(picture.to_rgb8())
        } else {
            picture
        };
        let mut out = Vec::new();
        if format == ImageFormat::WebP {
            picture
                .write_with_encoder(image::codecs::webp::WebPEncoder::new_lossless(&mut out))
                .unwrap();
        } else {
            picture
                .write_to(&mut Cursor::new(&mut out), format)
                .unwrap();
        }
        out
    }

    #[test]
    fn four_formats_in_two_out() {
        for (format, content_type) in [
            (ImageFormat::Jpeg, "image/jpeg"),
            (ImageFormat::Png, "image/png"),
            (ImageFormat::Gif, "image/png"),
            (ImageFormat::WebP, "image/png"),
        ] {
            let avatar = process(&encoded(format, 40, 30)).unwrap();
            assert_eq!(avatar.content_type, content_type, "{format:?}");
            let back = image::load_from_memory(&avatar.bytes).unwrap();
            assert_eq!((back.width(), back.height()), (40, 30));
        }
        let big = process(&encoded(ImageFormat::Png, 1024, 256)).unwrap();
        let back = image::load_from_memory(&big.bytes).unwrap();
        assert_eq!((back.width(), back.height()), (512, 128));
    }

    #[test]
    fn what_is_not_an_avatar() {
        assert_eq!(
            process(b"<svg xmlns='http://www.w3.org/2000/svg'/>").err(),
            Some(Refusal::Unsupported)
        );
        assert_eq!(
            process(b"<html><script>alert(1)</script>").err(),
            Some(Refusal::Unsupported)
        );
        let mut bmp = b"BM".to_vec();
        bmp.resize(64, 0);
        assert_eq!(process(&bmp).err(), Some(Refusal::Unsupported));
        // A PNG header and nothing after it.
        let png = encoded(ImageFormat::Png, 4, 4);
        assert_eq!(process(&png[..40]).err(), Some(Refusal::Invalid));
    }
}
